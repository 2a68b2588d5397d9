"""Two API servers side by side: the emulator and the real kube-apiserver, each behind the same
`Kube` interface, so one request can be sent to both and the answers compared."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.differential.normalize import normalize
from tests.fixtures.kube import Kube

Answer = tuple[int, Any]


@dataclass
class Pair:
    emulator: Kube
    real: Kube

    def both(self) -> tuple[Kube, Kube]:
        return self.emulator, self.real

    async def each(self, call: Callable[[Kube], Awaitable[Answer]]) -> tuple[Answer, Answer]:
        """The same call on the emulator, then on the real server (in this order, one at a time)."""
        first = await call(self.emulator)
        second = await call(self.real)
        return first, second

    async def request(
        self, method: str, path: Callable[[Kube], str], body: Any = None, **kwargs: Any
    ) -> tuple[Answer, Answer]:
        async def call(kube: Kube) -> Answer:
            return await kube.request(method, path(kube), _in_namespace(body, kube), **kwargs)

        return await self.each(call)

    def apply(self, manifests: list[dict[str, Any]]) -> None:
        for kube in self.both():
            kube.apply(manifests)

    @property
    def namespace(self) -> str:
        """Both servers' namespace for the test: the same name on each."""
        return self.real.namespace


def normalized(answers: tuple[Answer, Answer]) -> tuple[Answer, Answer]:
    (code_e, body_e), (code_r, body_r) = answers
    return (code_e, normalize(body_e)), (code_r, normalize(body_r))


def _in_namespace(body: Any, kube: Kube) -> Any:
    """A body whose metadata.namespace is "default" goes to the target's own namespace."""
    if isinstance(body, dict) and (body.get("metadata") or {}).get("namespace") == "default":
        copied = json.loads(json.dumps(body))
        copied["metadata"]["namespace"] = kube.namespace
        return copied
    return body
