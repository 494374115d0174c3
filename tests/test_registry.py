import copy

import pytest

from streetlight.errors import RegistryError, UnknownRoadError
from streetlight.registry import (
    format_chainage,
    load_road,
    make_road,
    road_from_mapping,
    road_geojson,
    road_to_mapping,
)


def test_nanhuan_has_93_poles_in_chainage_order():
    road = load_road("nanhuan-1")
    assert [p.id for p in road.poles] == [f"NH-{i:03d}" for i in range(1, 94)]
    ch = [p.chainage_m for p in road.poles]
    assert ch == sorted(ch) and len(set(ch)) == 93
    assert {p.side for p in road.poles} == {"N", "S"}
    assert len(road.segments) >= 3 and all(s.name for s in road.segments)
    assert all(30.0 < p.lat < 33.0 and 119.0 < p.lon < 120.5 for p in road.poles)
    assert "synthetic" in road.note.lower()


def test_feeders_cover_every_pole_once_in_position_order():
    road = load_road("nanhuan-1")
    on_feeders = [pid for f in road.feeders for pid in f.poles]
    assert sorted(on_feeders) == sorted(road.pole_ids)
    for f in road.feeders:
        positions = [road.pole(pid).feeder_position for pid in f.poles]
        assert positions == list(range(1, len(f.poles) + 1))
        cab = road.cabinet_by_id[f.cabinet]
        dist = [abs(road.pole(pid).chainage_m - cab.chainage_m) for pid in f.poles]
        assert dist == sorted(dist), "feeder order runs from the cabinet outward"


def test_loader_reports_every_problem_with_pole_and_field():
    data = road_to_mapping(load_road("nanhuan-1"))
    bad = copy.deepcopy(data)
    bad["poles"][4]["segment"] = "S99"
    bad["poles"][10]["lat"] = "north"
    bad["poles"][20]["equipment"] = ["lamp", "flux_capacitor"]
    bad["poles"][30]["id"] = bad["poles"][29]["id"]
    with pytest.raises(RegistryError) as info:
        road_from_mapping(bad, "bad.yaml")
    problems = {(p.pole, p.field) for p in info.value.problems}
    assert ("NH-005", "segment") in problems
    assert ("NH-011", "lat") in problems
    assert ("NH-021", "equipment") in problems
    assert ("NH-030", "id") in problems
    assert "bad.yaml" in str(info.value)


def test_unknown_road_names_the_known_ones():
    with pytest.raises(UnknownRoadError, match="nanhuan-1"):
        load_road("no-such-road")


@pytest.mark.parametrize("n", [1, 10, 10_000])
def test_synthetic_roads_validate_round_trip(n):
    road = make_road(n)
    assert len(road.poles) == n
    again = road_from_mapping(road_to_mapping(road), "synthetic")
    assert again.pole_ids == road.pole_ids
    assert road.arrays.chainage_m.shape == (n,)


def test_chainage_format():
    assert format_chainage(1592.5) == "K1+592"
    assert format_chainage(35) == "K0+035"


def test_geojson_has_every_pole():
    gj = road_geojson(load_road("nanhuan-1"))
    poles = [f for f in gj["features"] if f["properties"]["kind"] == "pole"]
    assert len(poles) == 93
    lon, lat = poles[0]["geometry"]["coordinates"]
    assert 119 < lon < 121 and 31 < lat < 32


def _with_endpoints(**by_pole: str):
    data = road_to_mapping(load_road("nanhuan-1"))
    for p in data["poles"]:
        if p["id"] in by_pole:
            p["lwm2m_endpoint"] = by_pole[p["id"]]
    return data


def test_lwm2m_endpoint_round_trips_and_shows_in_geojson():
    road = road_from_mapping(_with_endpoints(**{"NH-001": "urn:imei:860000000000001"}), "mixed.yaml")
    assert road.pole("NH-001").lwm2m_endpoint == "urn:imei:860000000000001"
    assert road.pole("NH-002").lwm2m_endpoint is None
    again = road_from_mapping(road_to_mapping(road), "again")
    assert again.pole("NH-001").lwm2m_endpoint == "urn:imei:860000000000001"
    props = {f["properties"]["id"]: f["properties"] for f in road_geojson(road)["features"]
             if f["properties"]["kind"] == "pole"}
    assert props["NH-001"]["lwm2m_endpoint"] == "urn:imei:860000000000001"
    assert props["NH-002"]["lwm2m_endpoint"] is None


def test_one_lwm2m_endpoint_serves_one_pole():
    with pytest.raises(RegistryError) as info:
        road_from_mapping(_with_endpoints(**{"NH-001": "urn:imei:1", "NH-002": "urn:imei:1", "NH-003": "a b"}), "x")
    problems = {(p.pole, p.field) for p in info.value.problems}
    assert ("NH-002", "lwm2m_endpoint") in problems
    assert ("NH-003", "lwm2m_endpoint") in problems


def test_road_show_lists_lwm2m_controllers(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from streetlight.cli import app

    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(_with_endpoints(**{"NH-007": "urn:imei:860000000000007"}), allow_unicode=True))
    out = CliRunner().invoke(app, ["road", "show", str(path)])
    assert out.exit_code == 0, out.output
    assert "NH-007" in out.output and "urn:imei:860000000000007" in out.output


@pytest.mark.parametrize(("share", "count"), [(0.0, 0), (0.5, 46), (1.0, 93)])
def test_an_lwm2m_share_is_spread_along_the_road(share, count):
    from streetlight.registry import with_lwm2m_share

    road = with_lwm2m_share(load_road("nanhuan-1"), share)
    chosen = [p.id for p in road.poles if p.lwm2m_endpoint]
    assert len(chosen) == count
    if share == 0.5:
        assert chosen[:3] == ["NH-002", "NH-004", "NH-006"]
        assert road.pole("NH-002").lwm2m_endpoint == "urn:dev:sl:nanhuan-1:NH-002"
        assert road.pole("NH-001").lwm2m_endpoint is None


def test_nanhuan_equipment_sits_on_ports_fed_around_the_clock():
    road = load_road("nanhuan-1")
    kinds = [q.kind for p in road.poles for q in p.ports]
    assert kinds.count("traffic_signal") == 4  # the four junctions
    assert kinds.count("small_cell") >= 8 and kinds.count("camera") >= 20 and "display" in kinds
    for p in road.poles:
        assert "lamp" not in {q.kind for q in p.ports}
        assert len({q.id for q in p.ports}) == len(p.ports)
        for q in p.ports:
            assert q.always_on and q.rated_power_w > 0 and q.kind in p.equipment
            assert p.port(q.id) is q
    signals = [p for p in road.poles if any(q.kind == "traffic_signal" for q in p.ports)]
    junctions = [s.end_m for s in road.segments]
    assert all(min(abs(p.chainage_m - j) for j in junctions) < 35 for p in signals)
    assert {c.meter for c in road.cabinets} == {"EM-C1", "EM-C2"}
    assert [f.id for f in road.feeders_of("C1")] == ["C1-L1", "C1-L2"]


def test_loader_rejects_bad_ports_by_pole_and_field():
    data = road_to_mapping(load_road("nanhuan-1"))
    bad = copy.deepcopy(data)
    bad["poles"][0]["ports"].append(dict(bad["poles"][0]["ports"][0]))  # duplicate id
    bad["poles"][1]["ports"][0]["kind"] = "lamp"
    bad["poles"][2]["ports"] = [{"id": "Cam_1", "kind": "camera", "rated_power_w": 25.0}]
    bad["poles"][3]["ports"] = [{"id": "cell-9", "kind": "small_cell", "rated_power_w": 80.0}]  # not in equipment
    with pytest.raises(RegistryError) as info:
        road_from_mapping(bad, "bad.yaml")
    problems = {(p.pole, p.field.split(" ")[0]) for p in info.value.problems}
    assert ("NH-001", "ports") in problems
    assert ("NH-002", "ports") in problems
    assert ("NH-003", "ports.0.id") in problems
    assert ("NH-004", "ports") in problems
