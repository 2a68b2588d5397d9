"""deploy/: `kubectl apply -k deploy/` installs exactly the chart's default render, and every
generated or copied file is fresh (`make manifests`)."""

from __future__ import annotations

import pytest

from tests.chart import generate
from tests.chart.tools import DEPLOY, REPO_ROOT, key, kustomize, render, without_helm_labels

pytestmark = pytest.mark.timeout(1500)


def test_kustomize_equals_the_default_render() -> None:
    """Same objects, same content; the kustomization adds only the Namespace (Helm users pass
    --create-namespace), and deploy/ leaves out the labels only Helm sets."""
    applied = {key(doc): doc for doc in kustomize(DEPLOY)}
    namespace = applied.pop(("Namespace", "", "publishing-operator"))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    rendered = {key(doc): doc for doc in without_helm_labels(render())}
    assert sorted(applied) == sorted(rendered)
    for name, doc in rendered.items():
        assert applied[name] == doc, name


@pytest.mark.parametrize("relative", sorted(generate.generated()))
def test_generated_file_is_fresh(relative: str) -> None:
    expected = generate.generated()[relative]
    assert (REPO_ROOT / relative).read_text() == expected, f"{relative} is stale: run `make manifests`"
