"""The release ledger: what already shipped, so a re-created resource does not ship it again.

Under GitOps a PublishingBuild lives in Git. When history limits or a TTL delete a Succeeded one,
Argo CD (or Flux, or a pipeline re-applying manifests) creates it again, with a new uid and no
status: the operator would silently build and submit a release that already shipped. So before
retention deletes a Succeeded resource it records it here, in a ConfigMap in the operator's own
namespace (`kubectl get configmap <lease-name>-releases -o yaml` shows it), keyed by namespace and
name and bound to the spec it ran with. A new resource with the same namespace, name and spec is
marked Succeeded/AlreadyReleased without any EAS call; a changed spec, or the retry annotation,
builds as usual.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from publishing_operator.adapters.kube import KubeApi, KubeError
from publishing_operator.controller.fresh_reads import FreshReads

log = logging.getLogger("publishing_operator.ledger")

MAX_ENTRIES = 2000  # a ConfigMap holds at most 1 MiB; an entry is ~250 bytes
WRITE_ATTEMPTS = 5


def spec_digest(spec: Mapping[str, Any]) -> str:
    """The release's identity: its spec, minus the one field a user may still change."""
    essence = {key: value for key, value in spec.items() if key != "cancel"}
    return hashlib.sha256(json.dumps(essence, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Release:
    """One shipped release, as the ledger keeps it."""

    spec_digest: str
    uid: str
    build_id: str | None
    submission_id: str | None
    completed_at: str | None


def _key(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"  # both DNS-1123: a valid ConfigMap key


class ReleaseLedger:
    def __init__(self, kube: KubeApi, *, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        # Every new resource looks itself up: a burst of them shares GETs, each started after its
        # callers asked (never staler than a GET of one's own; fresh_reads.py).
        self._reads: FreshReads[None, dict[str, Any] | None] = FreshReads(
            lambda _: self.kube.get_config_map(self.namespace, self.name)
        )

    async def lookup(self, namespace: str, name: str) -> Release | None:
        config_map = await self._reads.get(None)
        raw = ((config_map or {}).get("data") or {}).get(_key(namespace, name))
        if raw is None:
            return None
        try:
            return Release(**json.loads(raw))
        except (TypeError, ValueError):
            return None  # an entry someone edited by hand: ignored

    async def record(self, body: Mapping[str, Any]) -> None:
        """Record a Succeeded resource before it is deleted (raises if that cannot be done: the
        deletion then waits for the next retention pass)."""
        status = body.get("status") or {}
        if status.get("phase") != "Succeeded":
            return
        meta = body.get("metadata") or {}
        build, submission = status.get("build") or {}, status.get("submission") or {}
        release = Release(
            spec_digest=spec_digest(body.get("spec") or {}),
            uid=str(meta.get("uid")),
            build_id=build.get("id"),
            submission_id=submission.get("id"),
            completed_at=status.get("completionTime"),
        )
        entry = json.dumps(release.__dict__, separators=(",", ":"))
        key = _key(str(meta.get("namespace")), str(meta.get("name")))
        for _ in range(WRITE_ATTEMPTS):  # optimistic concurrency: re-read on a conflict
            current = await self.kube.get_config_map(self.namespace, self.name)
            try:
                if current is None:
                    await self.kube.create_config_map(self.namespace, self._config_map({key: entry}))
                else:
                    data = dict(current.get("data") or {})
                    data[key] = entry
                    body_out = self._config_map(_pruned(data))
                    body_out["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    await self.kube.replace_config_map(self.namespace, self.name, body_out)
                return
            except KubeError as exc:
                if not exc.conflict:
                    raise
        raise KubeError(f"the release ledger {self.namespace}/{self.name} kept changing", 409)

    def _config_map(self, data: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "publishing-operator"},
            },
            "data": data,
        }


def _pruned(data: dict[str, str]) -> dict[str, str]:
    """The newest MAX_ENTRIES releases (by completion time)."""
    if len(data) <= MAX_ENTRIES:
        return data

    def completed(item: tuple[str, str]) -> str:
        try:
            return str(json.loads(item[1]).get("completed_at") or "")
        except ValueError:
            return ""

    return dict(sorted(data.items(), key=completed)[-MAX_ENTRIES:])
