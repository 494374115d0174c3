"""Road time: a consensus of the poles' clocks that no minority can move (streetlight.clock)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streetlight.clock import ClockPolicy, RoadClock, StreamTime

T0 = 1_764_000_000_000  # a simulated evening, far from the wall clock
YEAR = 365 * 86_400_000
POLES = [f"P{i:03d}" for i in range(93)]


class FakeTime:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 2_000_000_000_000

    def monotonic(self) -> float:
        return self.mono

    def wall_ms(self) -> int:
        return self.wall


def clock(mode: str = "auto", tolerance_ms: int = 120_000, poles: list[str] = POLES,
          t: FakeTime | None = None) -> tuple[RoadClock, FakeTime]:
    t = t or FakeTime()
    c = RoadClock(poles, ClockPolicy(mode, tolerance_ms), wall=t.wall_ms, monotonic=t.monotonic)  # type: ignore[arg-type]
    return c, t


def report_all(c: RoadClock, ts: int, skew: dict[str, int] | None = None) -> dict[str, object]:
    """Every pole reports at true time ``ts`` (a pole in ``skew`` stamps ts + its offset)."""
    skew = skew or {}
    return {p: c.observe(p, ts + skew.get(p, 0)) for p in POLES}


def test_road_time_is_unknown_until_two_thirds_of_the_poles_are_heard():
    c, _ = clock()
    assert (c.quorum, c.known_after) == (32, 63)
    for p in POLES[:62]:
        c.observe(p, T0)
    assert c.now_ms() is None
    c.observe(POLES[62], T0)
    assert c.now_ms() == T0
    assert c.mode == "devices"  # a simulated evening, far from the wall clock


def test_one_pole_a_year_ahead_moves_nothing_and_is_corrected_and_skewed():
    c, _ = clock()
    report_all(c, T0)
    first = c.observe("P007", T0 + 10_000 + YEAR)
    assert c.now_ms() == T0  # one pole cannot move road time
    assert first.corrected and first.ts_ms == T0 and first.offset_ms == 10_000 + YEAR
    assert not first.skewed  # one reading is not yet a skewed clock (two are)
    for k in range(1, 4):
        js = report_all(c, T0 + k * 10_000, {"P007": YEAR})
        assert c.now_ms() == T0 + k * 10_000
        assert all(not j.corrected for p, j in js.items() if p != "P007")  # type: ignore[attr-defined]
    assert c.skewed("P007")
    # the clock set right: two good readings clear it
    for k in range(4, 6):
        report_all(c, T0 + k * 10_000)
    assert not c.skewed("P007")


@pytest.mark.parametrize("offset_ms", [-YEAR, -3_600_000, -600_000, 600_000, 3_600_000, YEAR])
def test_a_third_of_the_road_off_by_any_amount_cannot_move_road_time(offset_ms):
    c, _ = clock()
    bad = {p: offset_ms for p in POLES[:31]}  # 31 of 93: up to a third
    for k in range(6):
        js = report_all(c, T0 + k * 10_000, bad)
        now = c.now_ms()
        assert now is not None and abs(now - (T0 + k * 10_000)) <= 10_000
    assert all(c.skewed(p) for p in bad)
    assert not any(c.skewed(p) for p in POLES[31:])
    assert all(js[p].corrected for p in bad)  # type: ignore[attr-defined]


def test_silent_poles_do_not_hold_road_time_back():
    c, _ = clock()
    report_all(c, T0)
    alive = POLES[40:]  # a feeder and more go dark: 53 poles still report
    for k in range(1, 10):
        for p in alive:
            c.observe(p, T0 + k * 10_000)
    assert c.now_ms() == T0 + 9 * 10_000


def test_a_quiet_road_moves_on_at_real_speed_and_never_goes_back():
    c, t = clock()
    report_all(c, T0)
    t.mono += 1.0
    assert c.now_ms() == T0  # a moment of quiet: road time waits
    t.mono += 9.0
    assert c.now_ms() == T0 + 10_000  # quiet for longer: it moves on with the wall clock
    report_all(c, T0 + 5_000)  # late readings do not take it back
    assert c.now_ms() >= T0 + 10_000


def test_a_live_road_runs_on_the_wall_clock_and_judges_the_poles_against_it():
    t = FakeTime()
    c, _ = clock(t=t)
    for p in POLES:
        c.observe(p, t.wall - 3_000)  # poles a few seconds behind: network and batching
    assert c.mode == "wall"
    assert c.now_ms() == t.wall - 3_000  # the road's own time, which the wall clock bounds
    j = c.observe("P001", t.wall + YEAR)
    assert j.corrected and j.ts_ms == t.wall - 3_000
    for p in POLES:  # a majority with clocks far ahead cannot take a live road past the wall clock
        c.observe(p, t.wall + YEAR)
    assert c.now_ms() == t.wall


def test_explicit_modes():
    t = FakeTime()
    wall, _ = clock("wall", t=t)
    assert wall.now_ms() == t.wall  # known at once
    devices, _ = clock("devices", t=t)
    report_all(devices, t.wall - 3_000)
    assert devices.mode == "devices" and devices.now_ms() == t.wall - 3_000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(-YEAR, YEAR)), min_size=1, max_size=31,
                unique_by=lambda x: x[0]))
def test_property_no_minority_moves_road_time(bad_poles):
    """Any set of up to 31 of 93 poles, each off by any amount: road time follows the honest ones."""
    c, _ = clock()
    bad = {POLES[i]: off for i, off in bad_poles}
    for k in range(4):
        report_all(c, T0 + k * 10_000, bad)
        now = c.now_ms()
        assert now is not None and T0 + (k - 1) * 10_000 <= now <= T0 + k * 10_000


@pytest.mark.parametrize("offset_ms", [-YEAR, YEAR])
def test_a_third_off_from_the_very_first_report_cannot_set_road_time(offset_ms):
    """The bad clocks are heard first: road time is still the honest poles' once it is known."""
    c, _ = clock()
    for p in POLES[:31]:
        c.observe(p, T0 + offset_ms)
    for p in POLES[31:]:
        j = c.observe(p, T0)
        assert j.road_ms is None or j.road_ms == T0
        assert not j.corrected
    assert c.now_ms() == T0


def test_readings_are_judged_against_the_stream_not_a_stalled_pipelines_extrapolation():
    """The pipeline stalls for ten minutes of wall time (a slow database): the readings it then takes
    in are judged by the stream's own time, so no healthy clock is called skewed."""
    c, t = clock()
    report_all(c, T0)
    t.mono += 600.0
    assert c.now_ms() == T0 + 600_000  # "now" moved on over the quiet
    js = report_all(c, T0 + 10_000)  # the backlog: the next report of every pole
    assert not any(j.corrected for j in js.values())  # type: ignore[attr-defined]
    assert all(j.road_ms == T0 + 10_000 for j in list(js.values())[40:])  # type: ignore[attr-defined]


def test_a_live_road_knows_its_time_before_the_poles_report():
    t = FakeTime()
    c, _ = clock("wall", t=t)
    assert c.now_ms() == t.wall
    j = c.observe("P001", t.wall - 1_000)
    assert j.road_ms is None and not j.corrected  # nothing to judge a clock against yet


def test_a_consumer_judges_on_what_it_was_told_until_its_stream_falls_quiet():
    """The gateway's clock may run ahead of what the twins or the controller have been handed; they
    take the time of the last message given, and follow the clock only once nothing comes, never
    further past that message than the wall time since it."""
    t = FakeTime()
    s = StreamTime(monotonic=t.monotonic)
    assert s.now(T0) == T0  # nothing given yet: the clock's
    s.given(T0)
    assert s.now(T0 + 60_000) == T0  # the clock is a minute ahead of what this consumer was told
    t.mono += 5.0
    assert s.now(T0 + 60_000) == T0 + 5_000  # quiet for 5 s: on by the wall time since, no more
    t.mono += 100.0
    assert s.now(T0 + 60_000) == T0 + 60_000  # and never past the clock
    s.given(None)  # a message before road time was known moves nothing
    assert s.ms == T0


@pytest.mark.parametrize("offset_ms", [-600_000, 3_600_000])
def test_a_skewed_pole_keeps_its_own_cadence_while_road_time_lags_its_stream(offset_ms):
    """Its readings arrive ahead of the rest of the road's (road time lags them by up to 40 s): they
    are placed at their own time less the pole's offset, 10 s apart, not pinned to a lagging road
    time (which would leave the pole looking silent while the road catches up)."""
    c, _ = clock()
    report_all(c, T0)
    placed = []
    for k in range(1, 9):
        placed.append(c.observe("P050", T0 + k * 10_000 + offset_ms).ts_ms)  # its next report, early
        if k % 4 == 0:  # the rest of the road catches up in a burst
            for j in range(k - 3, k + 1):
                for p in POLES:
                    if p != "P050":
                        c.observe(p, T0 + j * 10_000)
    steps = [b - a for a, b in zip(placed[1:], placed[2:], strict=False)]
    assert all(s == 10_000 for s in steps), placed
    assert all(abs(t - (T0 + (k + 1) * 10_000)) <= 40_000 for k, t in enumerate(placed))
