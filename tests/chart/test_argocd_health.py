"""The Argo CD health check of PublishingBuilds (deploy/argocd/publishing.dev/PublishingBuild), in
Argo CD's own format (health.lua, health_test.yaml, testdata/), run by gopher-lua, the interpreter
Argo CD embeds, through tests/tools/argocdhealth, in both of Argo CD's modes: a custom check from
argocd-cm (no Lua standard libraries) and a bundled one (all libraries)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from publishing_operator.api import Phase, PublishingBuild
from tests.chart.generate import ARGOCD_KEY, HEALTH_DIR
from tests.chart.tools import DEPLOY, REPO_ROOT

CASES: list[dict[str, Any]] = yaml.safe_load((HEALTH_DIR / "health_test.yaml").read_text())["tests"]
HARNESS = REPO_ROOT / "tests" / "tools" / "argocdhealth"


@functools.cache
def harness_results() -> dict[tuple[str, str], dict[str, Any]]:
    """(inputPath, mode) -> the harness's verdict. Built with `go build` (Go's build cache makes a
    rebuild of an unchanged harness instant)."""
    if shutil.which("go") is None:
        pytest.fail("Go is needed to run the Argo CD health harness (it is on the CI machines)")
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "argocdhealth"
        env = {**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"}
        subprocess.run(
            ["go", "build", "-o", str(binary), "."],
            cwd=HARNESS,
            env=env,
            check=True,
            timeout=600,
            capture_output=True,
        )
        run = subprocess.run([str(binary), str(HEALTH_DIR)], capture_output=True, text=True, timeout=60)
    assert run.returncode in (0, 1), run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return {(r["inputPath"], r["mode"]): r for r in lines}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["custom", "builtin"])
@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health(case: dict[str, Any], mode: str) -> None:
    result = harness_results()[(case["inputPath"], mode)]
    assert result.get("error") is None, result["error"]
    assert result["actual"] == case["healthStatus"]


def objects() -> dict[str, dict[str, Any]]:
    return {c["inputPath"]: yaml.safe_load((HEALTH_DIR / c["inputPath"]).read_text()) for c in CASES}


def test_every_phase_and_edge_has_a_case() -> None:
    docs = objects()
    phases = {(doc.get("status") or {}).get("phase") for doc in docs.values()}
    assert phases >= {p.value for p in Phase} | {None}
    behind = [
        doc
        for doc in docs.values()
        if "status" in doc and doc["status"]["observedGeneration"] < doc["metadata"]["generation"]
    ]
    assert {doc["status"]["phase"] for doc in behind} >= {"Building", "Succeeded"}
    assert set(docs) == {str(p.relative_to(HEALTH_DIR)) for p in (HEALTH_DIR / "testdata").glob("*.yaml")}


def test_test_objects_are_valid_publishing_builds() -> None:
    for doc in objects().values():
        PublishingBuild.model_validate(doc)


def test_mapping_a_user_relies_on() -> None:
    verdicts = {Path(c["inputPath"]).stem: c["healthStatus"]["status"] for c in CASES}
    assert verdicts["succeeded"] == "Healthy"
    assert verdicts["failed"] == "Degraded"
    assert verdicts["cancelled-requested"] == "Healthy"
    assert verdicts["cancelled-outside"] == "Degraded"
    in_flight = ["no-status", "pending", "queued", "building", "submitting", "building-generation-behind"]
    assert {verdicts[name] for name in in_flight} == {"Progressing"}


def test_argocd_cm_patch_carries_the_script() -> None:
    patch = yaml.safe_load((DEPLOY / "argocd" / "argocd-cm-patch.yaml").read_text())
    assert patch == {"data": {ARGOCD_KEY: (HEALTH_DIR / "health.lua").read_text()}}
