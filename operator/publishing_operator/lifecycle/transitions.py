"""A transition: the next status, the Events to post, and the effects the controller carries out.

Every `on_*` function copies the status into a `_Draft`, changes it, and returns `draft.done()`.
The effects (free a limiter slot, leave the start queue, finalizer and label bookkeeping) are
derived here from the phase change, so the controller only performs them and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from publishing_operator.api import (
    COND_SUCCEEDED,
    FINISHED_PHASES,
    HISTORY_LIMIT,
    IN_FLIGHT_PHASES,
    AttemptResult,
    BuildStatus,
    Condition,
    ConditionStatus,
    HistoryEntry,
    Phase,
    PublishingBuildStatus,
    Reason,
    SubmissionStatus,
)


@dataclass(frozen=True)
class Ctx:
    """Who and when: the resource's uid and generation, the current time, and which operator
    process decides (it signs the request keys it claims)."""

    uid: str
    generation: int | None
    now: datetime
    claimant: str | None = None


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the resource."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Effects:
    """What the controller does beside writing the status (in this order: guard, write, the rest)."""

    guard_with_finalizer: bool = False  # EAS work may exist from now on: finalizer on before the write
    release_slot: bool = False  # the build left flight: free its in-flight limiter slot
    leave_queue: bool = False  # finished while waiting for a start slot: give up its place in the queue
    finished: bool = False  # became terminal: result label on, finalizer off, retention may prune
    drop_finalizer: bool = False  # left flight back to waiting (retry backoff): nothing on EAS to guard
    clear_result_label: bool = False  # a manual retry: the resource runs again


@dataclass(frozen=True)
class Transition:
    status: PublishingBuildStatus
    events: tuple[Event, ...] = ()
    effects: Effects = Effects()


def then(first: Transition, second: Transition) -> Transition:
    """Two transitions written as one: `second` was computed from `first.status`. Events of both in
    order, each effect wanted by either (one status write instead of two; the precondition of the
    write is the version `first` was decided on)."""
    a, b = first.effects, second.effects
    effects = Effects(
        guard_with_finalizer=a.guard_with_finalizer or b.guard_with_finalizer,
        release_slot=a.release_slot or b.release_slot,
        leave_queue=a.leave_queue or b.leave_queue,
        finished=a.finished or b.finished,
        drop_finalizer=a.drop_finalizer or b.drop_finalizer,
        clear_result_label=a.clear_result_label or b.clear_result_label,
    )
    return Transition(second.status, first.events + second.events, effects)


@dataclass
class _Draft:
    """Mutable working copy of the status while one transition is computed."""

    status: PublishingBuildStatus
    before_phase: Phase | None
    now: datetime
    generation: int | None
    uid: str
    claimant: str | None = None
    events: list[Event] = field(default_factory=list)
    release_slot: bool = False
    guard_with_finalizer: bool = False
    clear_result_label: bool = False

    def phase(self, phase: Phase, reason: Reason, message: str) -> None:
        self.status.phase = phase
        self.status.message = message
        if phase == Phase.SUCCEEDED:
            cond_status = ConditionStatus.TRUE
        elif phase in (Phase.FAILED, Phase.CANCELLED):
            cond_status = ConditionStatus.FALSE
        else:
            cond_status = ConditionStatus.UNKNOWN
        self.condition(COND_SUCCEEDED, cond_status, reason, message)
        # completionTime is set exactly when Succeeded leaves Unknown.
        if cond_status != ConditionStatus.UNKNOWN and self.status.completion_time is None:
            self.status.completion_time = self.now

    def condition(self, type_: str, status: ConditionStatus, reason: Reason, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, type_, status, reason, message, self.now, self.generation
        )

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(Event(reason, message, warning))

    def record(self, result: AttemptResult, reason: Reason, message: str | None) -> None:
        entry = HistoryEntry(
            attempt=self.status.attempt or 1,
            build_id=self.status.build.id if self.status.build else None,
            submission_id=self.status.submission.id if self.status.submission else None,
            result=result,
            reason=reason,
            message=message,
            finished_at=self.now,
        )
        self.status.history = [*self.status.history, entry][-HISTORY_LIMIT:]

    def claim(self, stage: str) -> str:
        """Claim the next request key for the build or the submission (a new, never used key).

        Only the process whose status write carrying the key is accepted may create the EAS object
        for it, right away (`requested_at` bounds when its create can still reach Expo)."""
        number = (self.status.request_count or 0) + 1
        self.status.request_count = number
        if stage == "build":
            key = f"{self.uid}.{number}"
            self.status.build = BuildStatus(request_key=key, requested_at=self.now, claimed_by=self.claimant)
        else:
            key = f"{self.uid}.{number}.submit"
            self.status.submission = SubmissionStatus(
                request_key=key, requested_at=self.now, claimed_by=self.claimant
            )
        return key

    def done(self) -> Transition:
        # Every transition was decided on the spec of `generation`: say so, on the status and on
        # every condition (kstatus tools read a lagging observedGeneration as "still progressing").
        if self.generation is not None:
            self.status.observed_generation = self.generation
            self.status.conditions = [
                c
                if c.observed_generation == self.generation
                else c.model_copy(update={"observed_generation": self.generation})
                for c in self.status.conditions
            ]
        before, after = self.before_phase, self.status.phase
        finished = after in FINISHED_PHASES and before not in FINISHED_PHASES
        effects = Effects(
            guard_with_finalizer=self.guard_with_finalizer,
            release_slot=self.release_slot,
            leave_queue=finished and before is Phase.QUEUED,
            finished=finished,
            drop_finalizer=not finished and before in IN_FLIGHT_PHASES and after not in IN_FLIGHT_PHASES,
            clear_result_label=self.clear_result_label,
        )
        return Transition(self.status, tuple(self.events), effects)


def observed_generation_lags(status: PublishingBuildStatus, generation: int | None) -> bool:
    """The spec changed (only spec.cancel can) since the operator last wrote the status."""
    if generation is None:
        return False
    return status.observed_generation != generation or any(
        c.observed_generation != generation for c in status.conditions
    )


def draft(status: PublishingBuildStatus, ctx: Ctx) -> _Draft:
    """A working copy: the `on_*` functions change its fields, and its `build` and `submission`
    in place; lists (conditions, history) are only ever replaced, never changed in place, so they
    are shared with `status` (a deep copy was most of the cost of a transition). `status` itself
    is never changed: the controller keeps it as the parsed copy of a resourceVersion."""
    copy = status.model_copy()
    if status.build is not None:
        copy.build = status.build.model_copy()
    if status.submission is not None:
        copy.submission = status.submission.model_copy()
    return _Draft(copy, status.phase, ctx.now, ctx.generation, ctx.uid, ctx.claimant)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: Reason | str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[Condition]:
    """Upsert a metav1.Condition; lastTransitionTime moves only when the status value changes."""
    previous = next((c for c in conditions if c.type == type_), None)
    changed = previous is None or previous.status != status
    updated = Condition(
        type=type_,
        status=status,
        reason=str(reason),
        message=message,
        last_transition_time=now if changed or previous is None else previous.last_transition_time,
        observed_generation=generation,
    )
    return [updated if c.type == type_ else c for c in conditions] if previous else [*conditions, updated]


def ceil_second(moment: datetime) -> datetime:
    """Status times have whole seconds: round up, so a backoff is never cut short."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def hhmmss(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%SZ") if moment else "?"
