"""What every step shares: the settings and the adapters, injected (tests pass fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from publishing_operator.adapters.events import EventSink
from publishing_operator.adapters.kube import KubeApi
from publishing_operator.circuit import CircuitBreaker
from publishing_operator.clock import utc_now
from publishing_operator.controller.secrets import CredentialResolver
from publishing_operator.expo.clients import ExpoClientFactory
from publishing_operator.limiter import StartLimiter
from publishing_operator.metrics import Metrics
from publishing_operator.settings import Settings


class Retention(Protocol):
    """What the controller needs of history retention: a nudge when a resource finishes."""

    def trigger(self) -> None: ...


class NoRetention:
    def trigger(self) -> None:
        pass


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
    retention: Retention = field(default_factory=NoRetention)
    clock: Callable[[], datetime] = utc_now
