"""Issue 14: the side-by-side benchmark's --quick runs (our side) as smoke tests.

Each scenario runs once at the quick size through the benchmark's own command line; the command
fails when a build does not succeed or when the ratelimit scenario ever sees more starts in a
sliding window than the limit allows (counted on the Expo simulator's clock, exactly).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import side_by_side
from bench.scenarios import QUICK

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["burst", "ratelimit", "fleet"])
def test_quick_run(name: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert side_by_side.main([name, "--quick", "--no-peer", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["scenarios"][name]
    (run,) = result["operator"]["runs"]
    metrics = run["metrics"]
    sc = QUICK[name]
    assert metrics["pickup_p99_ms"] >= metrics["pickup_p50_ms"] > 0
    if name == "ratelimit":
        assert metrics["max_starts_in_any_window"] <= sc.limit_max
        # Waiting starts never run before the sliding window allows them (lateness >= 0).
        assert metrics["waited_lateness_min_ms"] >= 0
    if name == "fleet":
        # Every build in flight is polled about once per interval (none starved, none doubled).
        one_each = metrics["one_poll_per_build_per_interval_per_min"]
        assert 0.5 * one_each <= metrics["expo_polls_per_min"] <= 1.5 * one_each
    else:
        assert metrics["not_succeeded"] == 0
        assert metrics["cpu_ms_per_build"] > 0
