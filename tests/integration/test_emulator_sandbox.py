"""`publishing-operator sandbox` as a newcomer runs it: kubectl answers from outside, SIGTERM stops it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.kube import OutputLines

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], OutputLines, Path]]:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "publishing_operator", "sandbox", "--no-table", "--time-scale", "0.01",
         "--kubeconfig-out", str(kubeconfig), "--log-file", str(tmp_path / "operator.log")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        yield process, OutputLines(process), kubeconfig
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_sandbox_serves_kubectl_runs_the_builds_and_stops_on_sigterm(
    sandbox: tuple[subprocess.Popen[str], OutputLines, Path], tmp_path: Path
) -> None:
    process, lines, kubeconfig = sandbox
    hint = lines.wait_for(lambda line: "kubectl --kubeconfig" in line, timeout=60)
    assert str(kubeconfig) in hint or "kubeconfig" in hint
    assert not any("not available" in line or "not wired" in line for line in lines.seen), lines.seen

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH")
    env = {**os.environ, "KUBECACHEDIR": str(tmp_path / "kube-cache")}
    table = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "get", "pb"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert table.returncode == 0, table.stderr
    assert table.stdout.split("\n")[0].split()[:3] == ["NAME", "PLATFORM", "PHASE"]
    assert "mobile-ios-1.4.2" in table.stdout

    # The operator, the simulator and the archive host are wired: every example reaches Succeeded.
    examples = {"mobile-ios-1.4.2", "mobile-android-1.4.2", "mobile-android-archive-1.4.3-rc1"}
    succeeded: set[str] = set()
    while succeeded != examples:
        line = lines.wait_for(lambda line: "phase=Succeeded" in line or "phase=Failed" in line, timeout=90)
        assert "phase=Succeeded" in line, line
        succeeded |= {name for name in examples if f"default/{name} " in line}

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    lines.wait_for(lambda line: line.endswith("sandbox: stopped"), timeout=10)

    # The operator's log is for a person: every phase change, no line per watch event, no
    # warning about signals (the sandbox runs the operator in a thread on purpose).
    log = (tmp_path / "operator.log").read_text()
    assert "phase Building -> " in log
    assert "Handler 'on_event' succeeded" not in log
    assert "OS signals are ignored" not in log


def test_sandbox_help_documents_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "publishing_operator", "sandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    flags = ["--host", "--port", "--kubeconfig-out", "--crds", "--examples", "--no-examples", "--time-scale"]
    flags += ["--no-operator", "--no-table", "--log-file", "--expo-api-url", "--start-rate", "--poll-build"]
    for flag in flags:
        assert flag in result.stdout, flag
