"""The control channel between an API process and the controller process: its secret, its typed
answers and the port's errors, over real loopback HTTP (the platform behind it is a stand-in:
the live API suite runs the channel on the real one)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.platform import (
    CabinetReport,
    Command,
    Conflict,
    Decision,
    FaultView,
    FeederReport,
    LiveEvent,
    NotFound,
    PoleStatus,
    Schedule,
    Subscribers,
    Unavailable,
)
from controller.schedule import Step
from runtime.control_channel import ControlChannel, channel_file
from runtime.control_client import ControlClient
from runtime.port_codec import encode, schedule

CMD = Command("c-1", "dim", "nanhuan-1", "NH-001", 5, "op", PoleStatus("acked", 40.0, None, 9), level=40.0,
              decision=Decision(30.0, 40.0, "floor", "raised", floor=40.0))
FAULT = FaultView("F-1", "cable_fault", "major", "acknowledged", "nanhuan-1", None, ["NH-055", "NH-056"], "S3",
                  "north", 1592.0, 31.7, 119.5, "C1-F2", 1, 2, "Supply lost", {"current_a": 0.0}, cabinet="C1",
                  acknowledged_by="crew", acknowledged_ms=3, notes=[{"actor": "crew", "ts_ms": 3, "note": "van 3"}])
SCHEDULE = Schedule(name="Lanterns", kind="exception", segments=("S4", "S1"), dates=(date(2027, 2, 6),),
                    priority=7, steps=(Step("dusk", 90.0), Step("23:30", 42.5), Step("dawn", 0.0)))
CABINET = CabinetReport(True, 7, 229.5, {"C1-F1": FeederReport("closed", 12.5, 3400.0), "C1-F2": FeederReport("open")})


class _Core:
    """What the channel calls, with answers and errors the test chooses."""

    def __init__(self) -> None:
        self.live = Subscribers()
        self.roads: dict[str, Any] = {}  # a change is answered with a snapshot of these roads: none

    def ready(self) -> dict[str, bool]:
        return {}

    def stats(self) -> dict[str, float]:
        return {}

    def subscribe(self) -> Any:
        return self.live.subscribe()

    def command(self, cmd_id: str) -> Command | None:
        return CMD if cmd_id == "c-1" else None

    def cabinet(self, road: str, cabinet: str) -> CabinetReport:
        return CABINET

    def put_schedule(self, road: str, schedule: Schedule, actor: str) -> Schedule:
        # the channel reads the JSON it carried back into the port's type before the platform sees it
        self.schedule_sent = schedule
        return replace(schedule, id="sch-1", road=road)

    def ack_fault(self, fault_id: str, actor: str, note: str) -> FaultView:
        if fault_id == "F-1":
            return FAULT
        if fault_id == "F-0":
            raise NotFound("fault", fault_id, "list faults with GET /api/v1/faults")
        raise Conflict(f"fault {fault_id} is resolved")


@pytest.fixture
def channel(tmp_path: Path) -> Any:
    ch = ControlChannel(_Core(), tmp_path).start()  # type: ignore[arg-type]
    yield ch
    ch.stop()


def test_typed_answers_and_port_errors_cross_the_channel(channel: ControlChannel, tmp_path: Path) -> None:
    client = ControlClient(channel_file(tmp_path, "controller"))
    from runtime.port_codec import cabinet, command, fault

    assert command(client.call("command", cmd_id="c-1")) == CMD
    assert fault(client.call("ack_fault", fault_id="F-1", actor="crew", note="")) == FAULT
    assert cabinet(client.call("cabinet", road="nanhuan-1", cabinet="C1")) == CABINET
    stored = schedule(client.call("put_schedule", road="nanhuan-1", schedule=encode(SCHEDULE), actor="op"))
    assert stored == replace(SCHEDULE, id="sch-1", road="nanhuan-1")
    assert channel.platform.schedule_sent == SCHEDULE  # type: ignore[attr-defined]
    assert client.call("command", cmd_id="c-2") is None
    with pytest.raises(NotFound) as nf:
        client.call("ack_fault", fault_id="F-0", actor="crew", note="")
    assert (nf.value.kind, nf.value.key) == ("fault", "F-0")
    with pytest.raises(Conflict, match="F-9 is resolved"):
        client.call("ack_fault", fault_id="F-9", actor="crew", note="")
    client.close()


def test_events_are_numbered_and_the_secret_is_required(channel: ControlChannel, tmp_path: Path) -> None:
    core: _Core = channel.platform  # type: ignore[assignment]
    client = ControlClient(channel_file(tmp_path, "controller"))
    first = client.events(0, 0.0)
    core.live.emit(LiveEvent("twin", {"pole": "NH-001"}))  # twins are the API process's own to build
    core.live.emit(LiveEvent("alert", {"fault_id": "F-1"}, 7))
    got = client.events(first["last"], 3.0)
    assert [e["kind"] for e in got["events"]] == ["alert"] and got["epoch"] == first["epoch"]
    r = httpx.post(f"{channel.url}/v1/call", json={"method": "command", "args": {"cmd_id": "c-1"}},
                   headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert httpx.post(f"{channel.url}/v1/call", json={"method": "stop", "args": {}},
                      headers={"Authorization": f"Bearer {channel.secret}"}).status_code == 400
    client.close()


def test_no_controller_process_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="not running"):
        ControlClient(channel_file(tmp_path, "controller")).call("command", cmd_id="c-1")


def test_the_channel_file_names_the_advertised_host_not_the_bind_address(tmp_path: Path) -> None:
    from streetlight.settings import Settings

    # as in a container (there on every interface; here on loopback): API processes are told a name
    s = Settings(control_host="127.0.0.1", control_advertise="localhost", data_dir=tmp_path)
    ch = ControlChannel(_Core(), tmp_path, host=s.control_host, advertise=s.control_address).start()  # type: ignore[arg-type]
    try:
        import json

        advertised = json.loads(channel_file(tmp_path, "controller").read_text())["url"]
        assert advertised.startswith("http://localhost:") and advertised == ch.url
        client = ControlClient(channel_file(tmp_path, "controller"))  # reaches it by that name
        assert client.call("command", cmd_id="c-2") is None
        client.close()
    finally:
        ch.stop()


def test_the_control_address_defaults_to_the_bind_address_and_never_to_a_wildcard() -> None:
    import socket

    from streetlight.settings import Settings

    assert Settings().control_host == "127.0.0.1" == Settings().control_address  # loopback unless told
    assert Settings(control_host="10.0.5.7").control_address == "10.0.5.7"
    assert Settings(control_host="0.0.0.0").control_address == socket.gethostname()
    assert Settings(control_host="0.0.0.0", control_advertise="controller-1").control_address == "controller-1"


class _HoldingCore(_Core):
    """A controller process serving roads a and b, holding those in ``held``; its cabinet answer
    says which process gave it (the voltage), and a road it does not hold is refused as the live
    platform refuses it."""

    def __init__(self, mark: float, held: set[str]) -> None:
        super().__init__()
        from types import SimpleNamespace

        self.mark, self.held = mark, held
        self.roads = {r: SimpleNamespace(pole_ids=[]) for r in ("a", "b")}
        self.control = SimpleNamespace(holds=lambda r: r in self.held, emergency_active=lambda r: False,
                                       level_of=lambda r, p: (None, None))
        self.gateway = SimpleNamespace(metrics=SimpleNamespace(restarts={}), config=SimpleNamespace(versions={}))

    def ready(self) -> dict[str, bool]:
        return {"road_time": True}

    def cabinet(self, road: str, cabinet: str) -> CabinetReport:
        if road not in self.held:
            raise Unavailable(f"this process does not hold {road}")
        return replace(CABINET, voltage_v=self.mark)

    def command(self, cmd_id: str) -> Command | None:
        return CMD if cmd_id == "c-1" and self.mark == 2.0 else None


def test_the_router_sends_each_road_to_its_holder_and_follows_a_takeover(tmp_path: Path) -> None:
    from runtime.control_client import ControlRouter
    from runtime.port_codec import cabinet, command

    one, two = _HoldingCore(1.0, {"a"}), _HoldingCore(2.0, {"b"})
    chans = [ControlChannel(one, tmp_path, name="ctl-1").start(),  # type: ignore[arg-type]
             ControlChannel(two, tmp_path, name="ctl-2").start()]  # type: ignore[arg-type]
    router = ControlRouter(tmp_path, road_of_fault=lambda f: "a")
    try:
        merged = router.snapshot()
        assert merged["holding"] == ["a", "b"] and merged["answering"] == 2 and merged["ready"]["road_time"]
        assert cabinet(router.call("cabinet", road="a", cabinet="C1")).voltage_v == 1.0
        assert cabinet(router.call("cabinet", road="b", cabinet="C1")).voltage_v == 2.0
        assert command(router.find("command", cmd_id="c-1")) == CMD  # only the process that issued it knows it
        # the first process loses road a to the second: the call it refuses is sent again, to the holder
        one.held, two.held = set(), {"a", "b"}
        assert cabinet(router.call("cabinet", road="a", cabinet="C1")).voltage_v == 2.0
        two.held = set()
        with pytest.raises(Unavailable, match="no controller process holds the road a"):
            router.call("cabinet", road="a", cabinet="C1")
    finally:
        router.close()
        for ch in chans:
            ch.stop()
