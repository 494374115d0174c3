"""The read model of API and controller processes: what it takes from each kind of topic.

``ReadModel.apply`` is what its worker thread does with each message; nothing here connects."""

from __future__ import annotations

from pathlib import Path

import orjson

from gateway.inbound import Raw
from runtime.read_model import ReadModel
from streetlight.registry import load_road
from streetlight.settings import Settings

TS = 1_795_453_200_000


def _raw(topic: str, body: dict[str, object] | bytes) -> Raw:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return Raw(topic, payload, 0, 1, 0)


def test_poles_on_their_topics_and_on_the_mirror_and_cabinets_on_theirs(tmp_path: Path) -> None:
    road = load_road("nanhuan-1")
    rm = ReadModel(Settings(data_dir=tmp_path), [road], client_id="read-model-test")
    reading = {"ts": TS, "seq": 1, "dim": 70.0, "power_w": 84.0, "voltage_v": 229.5}
    rm.apply(_raw("sl/v1/nanhuan-1/NH-001/telemetry", reading))
    rm.apply(_raw("sl/mirror/v1/nanhuan-1/NH-002/telemetry", {**reading, "dim": 35.0}))  # an LwM2M pole
    rm.apply(_raw("sl/v1/nanhuan-1/cabinet/C1/telemetry",
                  {"ts": TS, "seq": 1, "voltage_v": 228.0,
                   "feeders": {"C1-L1": {"breaker": "open", "current_a": 0.0, "energy_wh": 10.0}}}))
    rm.apply(_raw("sl/v1/nanhuan-1/cabinet/C1/status", b"online"))
    rm.apply(_raw("sl/v1/nanhuan-1/cabinet/C9/telemetry", {"ts": TS, "seq": 1, "feeders": {}}))  # no such cabinet
    rm.apply(_raw("sl/v1/nanhuan-1/NH-003/telemetry", b"{not json"))
    assert (rm.applied, rm.refused) == (4, 2)
    one, two = rm.twins.get("nanhuan-1", "NH-001"), rm.twins.get("nanhuan-1", "NH-002")
    assert one is not None and one.last_telemetry is not None and one.last_telemetry.dim == 70.0
    assert two is not None and two.last_telemetry is not None and two.last_telemetry.dim == 35.0
    cab = rm.cabinets.get("nanhuan-1", "C1")
    assert cab is not None and cab.online and cab.last is not None
    assert cab.last.feeders["C1-L1"].breaker == "open" and cab.last.voltage_v == 228.0
