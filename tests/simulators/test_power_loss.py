"""A pole losing its supply says nothing: the broker notices only when the keep-alive runs out."""

from __future__ import annotations

import time

import pytest

from simulators.rawmqtt import RawMqtt

from .conftest import Listener

pytestmark = pytest.mark.servers
KEEPALIVE_S = 2
STATUS = "sl/v1/nanhuan-1/NH-001/status"


def _pole(url: str) -> RawMqtt:
    host, port = url.removeprefix("mqtt://").split(":")
    conn = RawMqtt(host, int(port), "sl-nanhuan-1-NH-001", will=(STATUS, b"offline"), keepalive=KEEPALIVE_S)
    conn.connect()
    conn.publish_many([(STATUS, b"online", True)])
    assert conn.flush(10)
    return conn


def _offline(got: list[tuple[str, bytes, bool]]) -> bool:
    return any(t == STATUS and p == b"offline" for t, p, _ in got)


def _watch(url: str) -> Listener:
    lst = Listener(url, STATUS)
    assert lst.wait_for(lambda got: any(p == b"online" for _, p, _ in got), 10)
    return lst


def test_silent_death_reaches_the_broker_only_after_the_keep_alive(broker) -> None:
    conn = _pole(broker.url)
    lst = _watch(broker.url)
    try:
        died = time.monotonic()
        conn.go_silent()
        assert lst.wait_for(_offline, 6 * KEEPALIVE_S), "the broker never published the will"
        # Mosquitto gives a client 1.5 × keep-alive; nothing may announce the death before one keep-alive
        assert time.monotonic() - died >= KEEPALIVE_S
    finally:
        lst.close()
        conn.kill()


def test_clean_close_publishes_the_will_before_a_keep_alive_could_run_out(broker) -> None:
    conn = _pole(broker.url)
    lst = _watch(broker.url)
    try:
        conn.kill()
        assert lst.wait_for(_offline, KEEPALIVE_S)
    finally:
        lst.close()


def test_a_pole_back_before_the_keep_alive_runs_out_is_offline_then_online_at_once(broker) -> None:
    conn = _pole(broker.url)
    lst = _watch(broker.url)
    again = None
    try:
        conn.go_silent()
        time.sleep(KEEPALIVE_S / 2)  # the supply comes back before the broker gives up
        assert not _offline(lst.drain())
        # same client id: the broker ends the mute connection (its will goes out) for the new one
        again = _pole(broker.url)
        assert lst.wait_for(lambda got: [p for _, p, _ in got][-2:] == [b"offline", b"online"], KEEPALIVE_S)
        assert again.connected
    finally:
        lst.close()
        if again is not None:
            again.close()
