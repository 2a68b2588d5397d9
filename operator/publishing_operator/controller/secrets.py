"""Credentials for a resource: its Secrets read through the Kubernetes adapter (its own namespace
only), validated off the event loop, and the verdict cached per Secret resourceVersion.

Many resources share one token Secret, and a restart finds many Pending resources at once: the
key parsing and sign/verify probes would otherwise run on the event loop for every one of them.
Reads of one Secret at the same moment share a GET that started after each of them asked
(fresh_reads.py): never staler than a read of one's own, so a fixed Secret is seen as soon as
without sharing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

from publishing_operator.adapters.kube import SecretData
from publishing_operator.api import PublishingBuildSpec
from publishing_operator.controller.fresh_reads import FreshReads
from publishing_operator.credentials import CredentialCheck, referenced_secrets, validate_credentials

CACHE_SIZE = 1024
MISSING = "-"  # the "version" of a Secret that does not exist


class SecretSource(Protocol):
    """Where Secrets come from (the Kubernetes adapter; tests pass a dict)."""

    async def read_secret(self, namespace: str, name: str) -> SecretData | None: ...


class CredentialResolver:
    def __init__(self, kube: SecretSource, *, cache_size: int = CACHE_SIZE) -> None:
        self._kube = kube
        self._reads: FreshReads[tuple[str, str], SecretData | None] = FreshReads(
            lambda key: kube.read_secret(*key)
        )
        self._cache: OrderedDict[tuple[str, ...], CredentialCheck] = OrderedDict()
        self._cache_size = cache_size

    async def resolve(self, namespace: str, spec: PublishingBuildSpec) -> CredentialCheck:
        """Read every referenced Secret now (a KubeError propagates: it says nothing about them)."""
        found: dict[str, Mapping[str, bytes] | None] = {}
        versions: list[str] = []
        names = referenced_secrets(spec)
        secrets = await asyncio.gather(*(self._reads.get((namespace, name)) for name in names))
        for name, secret in zip(names, secrets, strict=True):
            found[name] = secret.data if secret is not None else None
            versions.append(f"{name}@{secret.resource_version if secret is not None else MISSING}")
        # What the verdict depends on: which keys of which Secrets, and the Secrets' versions.
        refs = spec.model_dump_json(
            include={"app": {"platform"}, "expo": True, "signing": True, "submit": True}
        )
        key = (namespace, refs, *versions)
        cacheable = all(not version.endswith("@") for version in versions)  # a version is known
        cached = self._cache.get(key) if cacheable else None
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        check = await asyncio.to_thread(validate_credentials, namespace, spec, found)
        if cacheable:
            self._cache[key] = check
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return check
