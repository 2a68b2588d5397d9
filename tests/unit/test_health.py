"""Liveness and readiness verdicts, driven by a fake monotonic clock, and the probe endpoints over a
real socket."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from publishing_operator.health import STEP_TIMEOUT, WATCH_ECHO_TIMEOUT, Health, serve_health
from publishing_operator.httpserve import start_http_server
from tests.fixtures.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(clock=clock)


def obj(uid: str, rv: int | str) -> dict[str, Any]:
    """A PublishingBuild as the API server returns it (only what the probes read, and a name)."""
    return {"metadata": {"uid": uid, "name": "app-1", "namespace": "team-a", "resourceVersion": str(rv)}}


# -- the watch stream --------------------------------------------------------------------------------


def test_a_quiet_operator_is_alive(health: Health, clock: FakeClock) -> None:
    clock.advance(10 * WATCH_ECHO_TIMEOUT)  # no writes, no events: nothing to miss
    assert health.liveness().ok


def test_a_write_whose_event_never_comes_fails_liveness_after_the_timeout(
    health: Health, clock: FakeClock
) -> None:
    health.note_write(obj("u1", 10))
    clock.advance(WATCH_ECHO_TIMEOUT)
    assert health.liveness().ok  # at the limit: still fine
    clock.advance(1)
    verdict = health.liveness()
    assert not verdict.ok
    assert not verdict.checks["watch"].ok and verdict.checks["workers"].ok
    assert verdict.checks["watch"].detail.startswith("1 write(s) not seen on the watch yet, the oldest 301s")


def test_the_echo_of_a_write_clears_it(health: Health, clock: FakeClock) -> None:
    health.note_write(obj("u1", 10))
    health.note_watch_event(obj("u1", 10))
    clock.advance(2 * WATCH_ECHO_TIMEOUT)
    assert health.liveness().ok
    assert health.snapshot().unechoed_writes == 0


def test_any_later_event_of_the_object_clears_every_earlier_write(health: Health, clock: FakeClock) -> None:
    # kopf may hand over only the latest of a burst of events; resourceVersions are not ordered.
    health.note_write(obj("u1", 10))
    health.note_write(obj("u1", 12))
    assert health.snapshot().unechoed_writes == 2
    health.note_watch_event(obj("u1", "opaque-15"))
    clock.advance(2 * WATCH_ECHO_TIMEOUT)
    assert health.liveness().ok


def test_the_lag_counts_from_the_first_unechoed_write(health: Health, clock: FakeClock) -> None:
    health.note_write(obj("u1", 10))
    clock.advance(100)
    health.note_write(obj("u1", 12))
    snap = health.snapshot()
    assert (snap.unechoed_writes, snap.echo_lag_seconds) == (2, 100.0)
    clock.advance(WATCH_ECHO_TIMEOUT - 99)
    assert not health.liveness().ok


def test_an_event_that_beats_the_write_response_counts(health: Health, clock: FakeClock) -> None:
    # The watch event of a write can arrive before the worker reads the write's response.
    health.note_watch_event(obj("u1", 10))
    health.note_write(obj("u1", 10))
    clock.advance(2 * WATCH_ECHO_TIMEOUT)
    assert health.liveness().ok


def test_events_of_other_objects_do_not_echo_a_write(health: Health, clock: FakeClock) -> None:
    health.note_write(obj("u1", 10))
    health.note_watch_event(obj("u2", 99))
    clock.advance(WATCH_ECHO_TIMEOUT + 1)
    assert not health.liveness().ok


def test_a_forgotten_object_awaits_nothing(health: Health, clock: FakeClock) -> None:
    health.note_write(obj("u1", 10))
    health.forget("u1")
    clock.advance(2 * WATCH_ECHO_TIMEOUT)
    assert health.liveness().ok


def test_odd_bodies_are_ignored(health: Health, clock: FakeClock) -> None:
    health.note_write({"metadata": "garbage"})
    health.note_write({})
    health.note_watch_event({"metadata": {}})
    clock.advance(2 * WATCH_ECHO_TIMEOUT)
    assert health.liveness().ok
    assert health.snapshot().watch_events == 1


# -- workers -----------------------------------------------------------------------------------------


def test_a_step_running_past_the_timeout_fails_liveness(health: Health, clock: FakeClock) -> None:
    with health.step():
        clock.advance(STEP_TIMEOUT)
        assert health.liveness().ok
        clock.advance(1)
        verdict = health.liveness()
        assert not verdict.ok and not verdict.checks["workers"].ok
        assert verdict.checks["workers"].detail == "1 step(s) running, the longest for 901s (limit 900s)"
        assert health.snapshot().longest_step_seconds == 901
    assert health.liveness().ok  # the step ended: alive again
    assert health.snapshot().steps_running == 0


def test_many_short_steps_are_fine(health: Health, clock: FakeClock) -> None:
    first = health.note_step_started()
    for _ in range(100):
        with health.step():
            clock.advance(1)
    health.note_step_finished(first)
    health.note_step_finished(first)  # twice: harmless
    clock.advance(10 * STEP_TIMEOUT)
    assert health.liveness().ok


def test_a_step_that_raises_is_finished(health: Health, clock: FakeClock) -> None:
    with pytest.raises(RuntimeError), health.step():
        raise RuntimeError("boom")
    clock.advance(10 * STEP_TIMEOUT)
    assert health.liveness().ok


# -- readiness ---------------------------------------------------------------------------------------


def test_ready_between_startup_and_shutdown(health: Health) -> None:
    assert not health.readiness().ok
    assert health.readiness().checks["started"].detail.startswith("starting")
    health.note_ready()
    assert health.readiness().ok and health.snapshot().ready
    health.note_stopping()
    assert not health.readiness().ok and not health.snapshot().ready
    assert health.liveness().ok  # running steps may still finish: no restart for that


def test_info_is_shown_and_never_decides(health: Health) -> None:
    workers = [3]
    health.add_info("workers", lambda: workers[0])
    health.add_info("leader", lambda: "standby")
    health.add_info("broken", lambda: 1 // 0)
    verdict = health.liveness()
    assert verdict.ok and verdict.info == {"workers": 3, "leader": "standby", "broken": "unknown"}
    workers[0] = 5
    assert health.readiness().info["workers"] == 5


# -- the endpoints -----------------------------------------------------------------------------------


async def test_probe_endpoints_answer_200_or_503_with_the_checks(health: Health, clock: FakeClock) -> None:
    probe = await start_http_server({}, host="127.0.0.1", port=0)
    port = probe.port  # a port that was free a moment ago
    await probe.stop()
    async with serve_health(health, port, host="127.0.0.1") as server, httpx.AsyncClient() as client:
        assert server is not None
        ready = await client.get(server.url("/readyz"))
        assert ready.status_code == 503
        assert ready.json()["checks"]["started"]["ok"] is False
        health.note_ready()
        assert (await client.get(server.url("/readyz"))).status_code == 200

        alive = await client.get(server.url("/healthz"))
        assert alive.status_code == 200
        assert alive.json()["ok"] is True and set(alive.json()["checks"]) == {"watch", "workers"}
        health.note_write(obj("u1", 7))
        clock.advance(WATCH_ECHO_TIMEOUT + 1)
        stuck = await client.get(server.url("/healthz"))
        assert stuck.status_code == 503
        assert stuck.json()["checks"]["watch"]["ok"] is False
        assert "app-1" not in stuck.text and "u1" not in stuck.text  # numbers, never names


async def test_health_port_0_is_off(health: Health) -> None:
    async with serve_health(health, 0) as server:
        assert server is None


async def test_the_log_names_the_address_listened_on(
    health: Health, caplog: pytest.LogCaptureFixture
) -> None:
    # In a Pod the probes listen on 0.0.0.0: a log line saying 127.0.0.1 sends users to the wrong place.
    caplog.set_level("INFO", logger="publishing_operator.http")
    async with serve_health(health, _free_port(), host="0.0.0.0") as server:
        assert server is not None
        assert f"health listening on 0.0.0.0:{server.port} (/healthz, /readyz)" in caplog.text
        assert "127.0.0.1" not in caplog.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
