"""The controller's exceptions.

    StreetlightError (streetlight.errors)
    └── ControllerError          base of every error raised on purpose by ``controller``
        ├── TableError           a data table (lighting classes, fault thresholds, schedule) is
        │                        wrong; ``source`` names the file, the message every problem
        ├── ScheduleError        a schedule step or exception cannot be evaluated
        ├── UnknownPoleError     an observation or override names a pole not on the road
        ├── UnknownFaultError    an acknowledge/resolve names a fault that does not exist (here)
        ├── FaultStateError      an acknowledge/resolve that the fault's lifecycle does not allow
        │                        (``controller.faults.lifecycle``); ``state`` and ``to`` say which
        └── EnergyStateError     a stored energy meter state that does not fit the road

Bad observations (unknown pole, stale timestamps) are counted in ``Controller.rejected`` and
never stop the controller; these exceptions are for callers that passed something wrong.
"""

from __future__ import annotations

from streetlight.errors import StreetlightError


class ControllerError(StreetlightError):
    """Base of the controller's errors."""


class TableError(ControllerError):
    def __init__(self, source: str, detail: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"{source}: {detail}")


class ScheduleError(ControllerError):
    pass


class UnknownPoleError(ControllerError):
    def __init__(self, road: str, pole: str) -> None:
        self.road = road
        self.pole = pole
        super().__init__(f"pole {pole!r} is not on road {road!r}; check the registry or the message topic")


class UnknownFaultError(ControllerError):
    def __init__(self, fault_id: str, where: str = "") -> None:
        self.fault_id = fault_id
        super().__init__(f"no fault {fault_id!r}{' ' + where if where else ''}; list the faults to find its id")


class FaultStateError(ControllerError):
    def __init__(self, fault_id: str, state: str, to: str, hint: str) -> None:
        self.fault_id = fault_id
        self.state = state
        self.to = to
        super().__init__(f"fault {fault_id} is {state}; it cannot become {to}: {hint}")


class EnergyStateError(ControllerError):
    def __init__(self, road: str, detail: str) -> None:
        self.road = road
        super().__init__(f"energy state of road {road!r}: {detail}; the meter starts from zero")
