"""The chaos run is shared by the tests of tests/chaos/test_chaos.py (one run, several verdicts);
its summary (the counts the issue asks for) is printed at the end of the session."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.chaos.plan import ChaosConfig
from tests.chaos.run import Report, run_chaos

SUMMARIES: list[str] = []


def ci_config() -> ChaosConfig:
    """CI-sized: about two and a half minutes on a loaded 2-core machine. PUBLISHING_CHAOS_SEED picks
    another plan (the seed is printed with the summary, so any run can be replayed)."""
    return ChaosConfig(seed=int(os.environ.get("PUBLISHING_CHAOS_SEED", "15")))


LOGS = Path(__file__).resolve().parents[2] / ".tmp" / "chaos"  # kept after the run (git-ignored)


@pytest.fixture(scope="session")
def chaos_run() -> Report:
    config = ci_config()
    workdir = LOGS / f"seed-{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    report = run_chaos(config, workdir)
    SUMMARIES.append(report.summary())
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for summary in SUMMARIES:
        terminalreporter.section("chaos")
        for line in summary.splitlines():
            terminalreporter.write_line(line)
