"""The simulators' exceptions.

    StreetlightError (streetlight.errors)
    └── SimulatorError              base of everything raised on purpose by ``simulators``
        ├── ScenarioError           a scenario file is wrong: ``file``, ``line`` and ``problem``
        ├── RecordingError          a recording (or its truth file) cannot be read (``file``, ``line``)
        ├── JudgeTableError         a judge's table (lighting classes) is missing or wrong
        └── BrokerConnectError      the broker refused or did not answer a connection
"""

from __future__ import annotations

from streetlight.errors import StreetlightError


class SimulatorError(StreetlightError):
    """Base of the simulators' errors."""


class ScenarioError(SimulatorError):
    """A scenario that cannot be run; names the file, the line (1-based, when known) and the problem."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")


class RecordingError(SimulatorError):
    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")


class JudgeTableError(SimulatorError):
    """A judge's data table cannot be used; the message names the file and the field."""


class BrokerConnectError(SimulatorError):
    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"cannot connect to the broker at {url}: {detail}")
