"""What one step works with: the object as read when the step began, and what the step resolved.
Every step handler takes a StepContext and returns when to step again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from publishing_operator import lifecycle as lc
from publishing_operator.api import PublishingBuildSpec, PublishingBuildStatus
from publishing_operator.controller import commit
from publishing_operator.controller.context import OperatorContext
from publishing_operator.controller.worker import Worker
from publishing_operator.credentials import ResolvedCredentials
from publishing_operator.expo.client import ExpoClient


@dataclass
class StepContext:
    ctx: OperatorContext
    worker: Worker
    spec: PublishingBuildSpec
    status: PublishingBuildStatus
    rv: str  # the resourceVersion `status` was read at: the precondition of this step's writes
    credentials: ResolvedCredentials | None = None

    @property
    def client(self) -> ExpoClient:
        assert self.credentials is not None, "a step that talks to Expo resolves credentials first"
        return self.ctx.expo.for_token(self.credentials.expo_token.get_secret_value())

    def now(self) -> datetime:
        return self.ctx.clock()

    def lc_ctx(self, now: datetime | None = None) -> lc.Ctx:
        generation = self.worker.body.get("metadata", {}).get("generation")
        return lc.Ctx(
            uid=self.worker.uid,
            generation=generation if isinstance(generation, int) else None,
            now=now or self.now(),
            claimant=self.ctx.identity,
        )

    def holds_unsent_claim(self, stage: str) -> bool:
        """This process claimed the current request key of `stage` (the status says so, even if the
        answer to the claim write was lost) and knows it sent no create for it."""
        target = self.status.build if stage == "build" else self.status.submission
        return (
            target is not None
            and target.request_key is not None
            and target.request_key == self.worker.fresh_key
            and target.claimed_by == self.ctx.identity
        )

    async def commit(self, transition: lc.Transition) -> None:
        """Carry out `transition`; from then on this step sees its status (and the new version)."""
        self.rv = await commit.apply(self.ctx, self.worker, self.status, transition, self.rv)
        self.status = transition.status


Handler = Callable[[StepContext], Awaitable[float | None]]
"""When to step again: seconds, 0 for at once, None when the resource needs nothing more."""
