"""Issue 12: history limits or a TTL delete a Succeeded release that a GitOps tool then re-creates
from Git: the operator must not silently build and submit it again."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.operator import Stack, phase, publishing_build

pytestmark = pytest.mark.integration


def reason(obj: dict[str, object]) -> str | None:
    status = obj.get("status") or {}
    assert isinstance(status, dict)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Succeeded":
            return str(cond.get("reason"))
    return None


async def test_a_release_recreated_after_retention_is_not_shipped_again(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.operator(history_succeeded="0")  # every Succeeded resource is deleted at once
    release = publishing_build("release-2-0-0")
    stack.apply(release)
    await stack.until(lambda: len(stack.submissions()) == 1, what="the release to ship", timeout=90)
    await stack.wait_gone("release-2-0-0", timeout=60)
    (build,) = stack.builds()
    ledger = stack.kube.kubectl("get", "configmap", "publishing-operator-releases", "-o", "json").stdout
    entry = json.loads(json.loads(ledger)["data"][f"{stack.kube.namespace}.release-2-0-0"])
    assert entry["build_id"] == build["id"]

    # Argo CD re-creates it from Git: same namespace, name and spec; a new uid, no status.
    stack.apply(release)
    again = await stack.wait("release-2-0-0", lambda o: phase(o) == "Succeeded", timeout=60)
    assert reason(again) == "AlreadyReleased"
    assert build["id"] in again["status"]["message"]
    assert again["status"]["build"]["id"] == build["id"]
    assert len(stack.builds()) == 1 and len(stack.submissions()) == 1  # nothing built or submitted
    await stack.wait_gone("release-2-0-0", timeout=60)  # and history keeps pruning it

    # The same name with another spec is another release: it builds.
    stack.apply(publishing_build("release-2-0-0", source={"github": {"ref": "refs/tags/v2.0.1"}}))
    await stack.until(lambda: len(stack.submissions()) == 2, what="the new release to ship", timeout=90)
    assert len(stack.builds()) == 2
