"""What every step shares: the settings and the adapters, injected (tests pass fakes)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from publishing_operator.adapters.events import EventSink
from publishing_operator.adapters.kube import KubeApi
from publishing_operator.circuit import CircuitBreaker
from publishing_operator.clock import utc_now
from publishing_operator.controller.ledger import ReleaseLedger
from publishing_operator.controller.secrets import CredentialResolver
from publishing_operator.expo.clients import ExpoClientFactory
from publishing_operator.health import Health
from publishing_operator.limiter import StartLimiter
from publishing_operator.metrics import Metrics
from publishing_operator.settings import Settings


class Retention(Protocol):
    """What the controller needs of history retention: a nudge when a resource finishes."""

    def trigger(self) -> None: ...


class NoRetention:
    def trigger(self) -> None:
        pass


def no_objects() -> list[Mapping[str, Any]]:
    return []


def no_keys() -> set[str]:
    return set()


def new_identity() -> str:
    """This operator process, in Lease holders and request-key claims: unique per start."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass
class OperatorContext:
    settings: Settings
    kube: KubeApi
    events: EventSink
    limiter: StartLimiter
    circuit: CircuitBreaker
    expo: ExpoClientFactory
    credentials: CredentialResolver
    metrics: Metrics = field(default_factory=Metrics)
    health: Health = field(default_factory=Health)
    retention: Retention = field(default_factory=NoRetention)
    clock: Callable[[], datetime] = utc_now
    # What already shipped (controller/ledger.py); None: no guard (tests of other things).
    ledger: ReleaseLedger | None = None
    # The live resources this process works on (the worker pool's copies): the exactly-once start
    # asks which other resources of the same app and git ref have a GitHub build request open.
    live_objects: Callable[[], list[Mapping[str, Any]]] = no_objects
    # The request keys this process claimed and knows it sent no create for (its workers' memory).
    unsent_keys: Callable[[], set[str]] = no_keys
    identity: str = field(default_factory=new_identity)
    # At most one GitHub build request per app, platform, profile and ref between its create call
    # and its persisted receipt: what makes an un-stamped build attributable after a crash.
    github_locks: dict[tuple[str, ...], asyncio.Lock] = field(default_factory=dict)

    def github_lock(self, *key: str) -> asyncio.Lock:
        return self.github_locks.setdefault(key, asyncio.Lock())
