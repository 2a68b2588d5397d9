"""Helpers of the chart tests: Go tools built through tests/tools/gobuild, `helm template`, kustomize.

Helm (tests/tools/helm) and the Argo CD health harness (tests/tools/argocdhealth) are built from
their Go modules into a cache outside the repository; a cold build of Helm takes about 3 minutes on
2 cores, a warm one nothing. `make tools` builds them before the tests.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "publishing-operator"
DEPLOY = REPO_ROOT / "deploy"
RELEASE = "publishing-operator"
NAMESPACE = "publishing-operator"
# Labels only Helm can set truthfully; deploy/ (kubectl apply -k) carries the chart's other labels.
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
GOBUILD_TIMEOUT = 1200.0

Doc = dict[str, Any]


@functools.cache
def go_tool(module: str, binary: str) -> Path:
    """Build (or reuse) the Go tool module tests/tools/<module> and return the binary's path."""
    if shutil.which("go") is None:
        pytest.fail("Go is needed to build the chart test tools (it is on the CI machines)")
    result = subprocess.run(
        [str(REPO_ROOT / "tests" / "tools" / "gobuild"), str(REPO_ROOT / "tests" / "tools" / module)],
        capture_output=True,
        text=True,
        timeout=GOBUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"gobuild {module} failed:\n{result.stderr[-4000:]}")
    path = Path(result.stdout.strip().splitlines()[-1]) / binary
    assert path.is_file(), path
    return path


def helm(
    *args: str, values: Mapping[str, Any] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the built helm; `values` go in as one more values file (`-f -`), merged over the defaults."""
    extra = ["--values", "-"] if values is not None else []
    result = subprocess.run(
        [str(go_tool("helm", "helm")), *args, *extra],
        input=yaml.safe_dump(dict(values)) if values is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(
    values: Mapping[str, Any] | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE
) -> list[Doc]:
    """`helm template` of the chart, parsed: one dict per object, in Helm's install order."""
    out = helm("template", release, str(CHART), "--namespace", namespace, values=values).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def render_error(values: Mapping[str, Any] | None = None) -> str:
    """The error of a `helm template` that must fail."""
    result = helm("template", RELEASE, str(CHART), values=values, check=False)
    assert result.returncode != 0, f"rendering succeeded with {values}"
    return result.stderr


def render_notes(values: Mapping[str, Any] | None = None, *, namespace: str = NAMESPACE) -> str:
    """NOTES.txt as `helm install` prints it. `helm template` does not print NOTES and `helm install
    --dry-run` needs a cluster: a copy of the chart renders NOTES.txt through `tpl` into a ConfigMap."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / CHART.name
        shutil.copytree(CHART, chart)
        (chart / "files" / "NOTES.txt").write_text((CHART / "templates" / "NOTES.txt").read_text())
        (chart / "templates" / "zz-notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
            'data: {notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}}\n'
        )
        out = helm("template", RELEASE, str(chart), "--namespace", namespace, values=values).stdout
    (notes,) = [doc for doc in yaml.safe_load_all(out) if doc and doc["metadata"]["name"] == "notes"]
    return str(notes["data"]["notes"])


def kustomize(path: Path) -> list[Doc]:
    """`kubectl kustomize` (kubectl's built-in kustomize, no cluster needed), parsed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed for kustomize (.ci/run installs it)")
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def without_helm_labels(docs: Iterable[Doc]) -> list[Doc]:
    """The objects without the labels only Helm sets (on objects and on pod templates)."""
    import copy

    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        for meta in (doc.get("metadata", {}), doc.get("spec", {}).get("template", {}).get("metadata", {})):
            labels = meta.get("labels") or {}
            for key in HELM_ONLY_LABELS:
                labels.pop(key, None)
        out.append(doc)
    return out


def key(doc: Doc) -> tuple[str, str, str]:
    return (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])


def by_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: Iterable[Doc], kind: str) -> Doc:
    (doc,) = by_kind(docs, kind)
    return doc
