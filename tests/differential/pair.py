"""Two API servers side by side: the emulator and the real kube-apiserver, each behind the same
`Kube` interface and a namespace of the same name, so one request can go to both and the answers
be compared."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.differential.normalize import assert_same, normalize, status_fields
from tests.fixtures.kube import Kube

Path = str | Callable[[Kube], str]


@dataclass
class Answer:
    code: int
    body: Any
    warnings: list[str] = field(default_factory=list)

    def comparable(self) -> tuple[int, Any, list[str]]:
        """What must be equal: the code, the Status parts clients act on (or the normalized object),
        the Warning headers."""
        is_status = isinstance(self.body, dict) and self.body.get("kind") == "Status"
        body = normalize(status_fields(self.body) if is_status else self.body)
        return self.code, body, self.warnings


@dataclass
class Pair:
    emulator: Kube
    real: Kube

    @property
    def namespace(self) -> str:
        """Both servers' namespace for the test: the same name on each."""
        return self.real.namespace

    def both(self) -> tuple[Kube, Kube]:
        return self.emulator, self.real

    def apply(self, manifests: list[dict[str, Any]]) -> None:
        for kube in self.both():
            kube.apply(manifests)

    async def send(
        self,
        method: str,
        path: Path,
        body: Any = None,
        *,
        content_type: str = "application/json",
        accept: str = "application/json",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Answer, Answer]:
        """The same request to the emulator, then to the real server."""
        answers = []
        for kube in self.both():
            target = path(kube) if callable(path) else path
            answers.append(
                await request(kube, method, target, body, content_type, accept, params or {}, headers or {})
            )
        return answers[0], answers[1]

    async def same(self, method: str, path: Path, body: Any = None, **kwargs: Any) -> tuple[Answer, Answer]:
        """`send`, then assert both answers are equal once the allowed differences are taken out."""
        emulator, real = await self.send(method, path, body, **kwargs)
        assert_same(emulator.comparable(), real.comparable())
        return emulator, real


async def request(
    kube: Kube,
    method: str,
    path: str,
    body: Any,
    content_type: str,
    accept: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> Answer:
    data = None if body is None else (body if isinstance(body, bytes | str) else json.dumps(body))
    sent = {"Content-Type": content_type, "Accept": accept, **headers}
    async with (
        kube.client_session() as session,
        session.request(method, path, data=data, params=params, headers=sent) as response,
    ):
        text = await response.text()
        warnings = response.headers.getall("Warning", [])
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = text
        return Answer(response.status, decoded, list(warnings))
