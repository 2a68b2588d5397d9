"""The PublishingBuild lifecycle as pure functions: no kopf, no I/O, time passed in.

    Pending ─credentials ok─▶ Queued ─start slot─▶ Building ─FINISHED─▶ Submitting ─FINISHED─▶ Succeeded
       │                        │                   │ ERRORED, retryable ─▶ Queued (attempt+1, backoff)
       │                        │                   │ ERRORED: user error, no attempts left, timeout ─▶ Failed
       └─ invalid spec ─▶ Failed └───────────────────┴─ spec.cancel ─▶ cancel on EAS ─▶ Cancelled

- `steps.next_step(spec, status, now)` reads the persisted status and says what to do next (check
  credentials, ask for a start slot, create or adopt the build, poll it, ...). It is a function of
  the status alone, so a restarted operator resumes exactly where the last one stopped.
- The `on_*` functions (admission, build, submission, control) take what was just observed (a
  credential check, a limiter answer, an EAS build or submission) and return a `Transition`: the
  next status, the Events to post and the effects to carry out (transitions.py).
- `eas` holds Expo's states, grouped as the lifecycle reads them.

The controller (publishing_operator.controller) performs the I/O and carries out transitions; it
makes no decisions of its own.
"""

from publishing_operator.lifecycle.admission import (
    on_already_released,
    on_credentials,
    on_invalid_spec,
    on_slot_denied,
    on_slot_granted,
    on_step_trouble,
    on_unauthorized,
)
from publishing_operator.lifecycle.build import (
    BuildObservation,
    on_build_observed,
    on_build_rejected,
    on_build_started,
)
from publishing_operator.lifecycle.control import (
    on_cancelling,
    on_manual_retry,
    on_nothing_to_cancel,
    on_spec_observed,
)
from publishing_operator.lifecycle.requests import (
    on_claim_renewed,
    on_claimed,
    on_confirming,
    on_receipt,
    on_unconfirmed,
)
from publishing_operator.lifecycle.steps import (
    Step,
    cancel_requested,
    eas_work_in_flight,
    next_build_key,
    next_step,
    result_label,
    timed_out,
)
from publishing_operator.lifecycle.submission import (
    SubmissionObservation,
    on_submission_observed,
    on_submission_rejected,
    on_submission_started,
)
from publishing_operator.lifecycle.transitions import (
    Ctx,
    Effects,
    Event,
    Transition,
    observed_generation_lags,
    set_condition,
    then,
)

__all__ = [
    "BuildObservation",
    "Ctx",
    "Effects",
    "Event",
    "Step",
    "SubmissionObservation",
    "Transition",
    "cancel_requested",
    "eas_work_in_flight",
    "next_build_key",
    "next_step",
    "observed_generation_lags",
    "on_already_released",
    "on_build_observed",
    "on_build_rejected",
    "on_build_started",
    "on_cancelling",
    "on_claim_renewed",
    "on_claimed",
    "on_confirming",
    "on_credentials",
    "on_invalid_spec",
    "on_manual_retry",
    "on_nothing_to_cancel",
    "on_receipt",
    "on_slot_denied",
    "on_slot_granted",
    "on_spec_observed",
    "on_step_trouble",
    "on_submission_observed",
    "on_submission_rejected",
    "on_submission_started",
    "on_unauthorized",
    "on_unconfirmed",
    "result_label",
    "set_condition",
    "then",
    "timed_out",
]
