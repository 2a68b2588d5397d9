"""Kubernetes API faults, injected on purpose (chaos tests, demos), and a journal of every request.

The emulator answers faithfully unless a fault says otherwise. Like the Expo simulator's
`/__simulator/faults`, faults are explicit and counted:

- `error`: the next `count` requests matching (verb, resource, subresource, namespace) get HTTP
  `code` with a Status body (409 Conflict, 429 with Retry-After, 500, 503, 504 ...);
- `drop`: the next `count` matching requests lose their connection (no answer at all), `before` or
  `after` the write is applied;
- `cut_watches`: every open watch stream is cut now (the connection drops mid-stream);
- `gone`: the next `count` watches that resume from a resourceVersion get 410 Gone;
- `outage`: for `seconds`, every request loses its connection and open watches are cut (the API
  server is down), then it answers again;
- `latency`: the next `count` matching requests wait `seconds` before being answered.

Python: `handle.faults.add(ApiFault(kind="error", code=409, verb="patch", subresource="status"))`.
HTTP: `POST /__emulator/faults` with the same JSON (a list or one object); `GET /__emulator/faults`
shows what is pending and what was injected, by kind; `GET /__emulator/requests` is the journal.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["error", "drop", "cut_watches", "gone", "outage", "latency"]
JOURNAL_SIZE = 200_000  # requests remembered (about 40 MB at most): enough for any test run


class ApiFault(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int = Field(1, ge=1)
    # Which requests (None = any): verb as RBAC names it (get, list, watch, create, update, patch,
    # delete), the resource plural, the subresource ("status"), the namespace.
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    agent: str | None = None  # a User-Agent prefix: only that client's requests (e.g. "publishing-operator")
    body_contains: str | None = None  # only requests whose body holds this text (e.g. "requestKey")
    code: int = Field(503, ge=400, le=599)  # for `error`
    retry_after: int | None = Field(None, ge=0)  # for `error` (429, 503)
    when: Literal["before", "after"] = "before"  # for `drop`: before or after the write is applied
    seconds: float = Field(0.0, ge=0)  # for `outage` and `latency`

    def matches(
        self,
        verb: str,
        resource: str | None,
        subresource: str | None,
        namespace: str | None,
        agent: str = "",
        body: str = "",
    ) -> bool:
        return (
            (self.agent is None or agent.startswith(self.agent))
            and (self.body_contains is None or self.body_contains in body)
            and (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.subresource is None or self.subresource == subresource)
            and (self.namespace is None or self.namespace == namespace)
        )


@dataclass(frozen=True)
class RequestRecord:
    """One request as the API server saw it (the journal)."""

    time: float
    method: str
    path: str
    query: str
    verb: str
    resource: str | None
    namespace: str | None
    name: str | None
    subresource: str | None
    agent: str = ""  # the User-Agent header: whose request it was
    fault: str | None = None  # the fault kind that answered it instead of the API

    def to_json(self) -> dict[str, object]:
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "verb": self.verb,
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
            "subresource": self.subresource,
            "agent": self.agent,
            "fault": self.fault,
        }


class FaultPlan:
    """Pending faults and the counts of those injected; all methods run on the emulator's loop."""

    def __init__(self) -> None:
        self.pending: list[ApiFault] = []
        self.injected: Counter[str] = Counter()
        self.outage_until = 0.0
        self.watch_epoch = 0  # a watch stream that started in an older epoch has been cut
        self.journal: deque[RequestRecord] = deque(maxlen=JOURNAL_SIZE)

    def add(self, fault: ApiFault) -> None:
        if fault.kind == "cut_watches":
            self.cut_watches()
        elif fault.kind == "outage":
            self.outage_until = max(self.outage_until, time.monotonic() + fault.seconds)
            self.injected["outage"] += 1
            self.cut_watches(count=False)
        else:
            self.pending.append(fault.model_copy())

    def cut_watches(self, *, count: bool = True) -> None:
        self.watch_epoch += 1
        if count:
            self.injected["cut_watches"] += 1

    @property
    def in_outage(self) -> bool:
        return time.monotonic() < self.outage_until

    def take(
        self,
        kinds: tuple[str, ...],
        verb: str,
        resource: str | None,
        subresource: str | None,
        namespace: str | None,
        agent: str = "",
        body: str = "",
    ) -> ApiFault | None:
        """Consume one use of the first pending fault of `kinds` that matches the request."""
        for fault in self.pending:
            if fault.kind in kinds and fault.matches(verb, resource, subresource, namespace, agent, body):
                fault.count -= 1
                if fault.count <= 0:
                    self.pending.remove(fault)
                self.injected[fault.kind] += 1
                return fault.model_copy(update={"count": 1})
        return None

    def describe(self) -> dict[str, object]:
        return {
            "pending": [fault.model_dump(exclude_defaults=True) for fault in self.pending],
            "injected": dict(self.injected),
            "outage_seconds_left": max(0.0, self.outage_until - time.monotonic()),
        }
