"""Condition reasons, and which condition and status each belongs to (the README's table)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from publishing_operator.api.enums import ConditionStatus
from publishing_operator.api.names import COND_CREDENTIALS, COND_SUCCEEDED

# The error code of a source refused by the operator's own policy (egress.py), not by Expo: the
# lifecycle fails such an attempt with Reason.SOURCE_NOT_ALLOWED instead of BuildFailed.
SOURCE_NOT_ALLOWED_CODE = "SOURCE_NOT_ALLOWED"


class Reason(StrEnum):
    """Condition reasons. `REASONS` below says which condition and status each belongs to."""

    # Succeeded=Unknown
    CREDENTIALS_NOT_READY = "CredentialsNotReady"
    QUEUED = "Queued"
    RATE_LIMITED = "RateLimited"
    EXPO_UNAVAILABLE = "ExpoUnavailable"
    RETRY_BACKOFF = "RetryBackoff"
    BUILD_STARTING = "BuildStarting"
    BUILD_QUEUED = "BuildQueued"
    BUILD_IN_PROGRESS = "BuildInProgress"
    SUBMISSION_STARTING = "SubmissionStarting"
    SUBMISSION_IN_PROGRESS = "SubmissionInProgress"
    CANCELLING = "Cancelling"
    CONFIRMING = "Confirming"
    # Succeeded=True
    SUCCEEDED = "Succeeded"
    ALREADY_RELEASED = "AlreadyReleased"
    # Succeeded=False
    BUILD_FAILED = "BuildFailed"
    SUBMISSION_FAILED = "SubmissionFailed"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    TIMEOUT = "Timeout"
    CANCELLED = "Cancelled"
    INVALID_SPEC = "InvalidSpec"
    UNCONFIRMED = "Unconfirmed"
    SOURCE_NOT_ALLOWED = "SourceNotAllowed"
    # CredentialsReady
    VALIDATED = "Validated"
    SECRET_NOT_FOUND = "SecretNotFound"
    KEY_NOT_FOUND = "KeyNotFound"
    INVALID_CREDENTIAL = "InvalidCredential"
    UNAUTHORIZED = "Unauthorized"

    @property
    def info(self) -> ReasonInfo:
        return REASONS[self]

    @property
    def description(self) -> str:
        return REASONS[self].description


class ReasonInfo(NamedTuple):
    condition: str
    status: ConditionStatus
    description: str


_U, _T, _F = ConditionStatus.UNKNOWN, ConditionStatus.TRUE, ConditionStatus.FALSE

# The reason table (the README's table is generated from it).
REASONS: dict[Reason, ReasonInfo] = {
    Reason.CREDENTIALS_NOT_READY: ReasonInfo(
        COND_SUCCEEDED, _U, "A referenced Secret is missing or invalid; re-checked with backoff."
    ),
    Reason.QUEUED: ReasonInfo(COND_SUCCEEDED, _U, "Credentials are valid; waiting to start a build."),
    Reason.RATE_LIMITED: ReasonInfo(
        COND_SUCCEEDED, _U, "Waiting for a slot of the global build-start rate limit or in-flight cap."
    ),
    Reason.EXPO_UNAVAILABLE: ReasonInfo(
        COND_SUCCEEDED, _U, "Expo's API keeps failing (circuit open); new builds wait until it recovers."
    ),
    Reason.RETRY_BACKOFF: ReasonInfo(
        COND_SUCCEEDED, _U, "A retryable attempt failed; the next attempt starts at status.nextRetryTime."
    ),
    Reason.BUILD_STARTING: ReasonInfo(
        COND_SUCCEEDED, _U, "The build request is recorded (status.build.requestKey) and being sent to EAS."
    ),
    Reason.BUILD_QUEUED: ReasonInfo(COND_SUCCEEDED, _U, "The EAS build waits in Expo's build queue."),
    Reason.BUILD_IN_PROGRESS: ReasonInfo(COND_SUCCEEDED, _U, "The EAS build is running."),
    Reason.SUBMISSION_STARTING: ReasonInfo(
        COND_SUCCEEDED, _U, "The build finished; the store submission is being created."
    ),
    Reason.SUBMISSION_IN_PROGRESS: ReasonInfo(COND_SUCCEEDED, _U, "The EAS submission is running."),
    Reason.CANCELLING: ReasonInfo(
        COND_SUCCEEDED, _U, "Cancellation was requested; the EAS build or submission is being cancelled."
    ),
    Reason.CONFIRMING: ReasonInfo(
        COND_SUCCEEDED,
        _U,
        "The outcome of a create request is unknown (a lost answer, a restart, another operator); "
        "the operator finds out before it creates anything.",
    ),
    Reason.SUCCEEDED: ReasonInfo(
        COND_SUCCEEDED, _T, "The build finished and, when requested, the submission was accepted."
    ),
    Reason.ALREADY_RELEASED: ReasonInfo(
        COND_SUCCEEDED,
        _T,
        "This exact release (namespace, name and spec) already shipped from a resource that history "
        "limits or a TTL deleted; nothing was built again. Retry with the annotation to build anyway.",
    ),
    Reason.BUILD_FAILED: ReasonInfo(
        COND_SUCCEEDED, _F, "The EAS build failed with an error that retrying cannot fix."
    ),
    Reason.SUBMISSION_FAILED: ReasonInfo(
        COND_SUCCEEDED,
        _F,
        "A submission attempt failed (recorded in status.history; the submission is retried).",
    ),
    Reason.RETRIES_EXHAUSTED: ReasonInfo(
        COND_SUCCEEDED, _F, "Every attempt of spec.retry.maxAttempts failed with a retryable error."
    ),
    Reason.TIMEOUT: ReasonInfo(COND_SUCCEEDED, _F, "The build or submission exceeded spec.timeouts."),
    Reason.CANCELLED: ReasonInfo(
        COND_SUCCEEDED, _F, "Cancelled by spec.cancel or by deletion; EAS work was cancelled."
    ),
    Reason.INVALID_SPEC: ReasonInfo(
        COND_SUCCEEDED, _F, "The spec breaks a rule the operator enforces; fix it in a new resource."
    ),
    Reason.UNCONFIRMED: ReasonInfo(
        COND_SUCCEEDED,
        _F,
        "Expo may have started a build whose create answer was lost, and none appeared in time; "
        "nothing more was created. Check Expo, then retry with the annotation.",
    ),
    Reason.SOURCE_NOT_ALLOWED: ReasonInfo(
        COND_SUCCEEDED,
        _F,
        "The archive source breaks the operator's archive source policy (PUBLISHING_ARCHIVE_* settings).",
    ),
    Reason.VALIDATED: ReasonInfo(
        COND_CREDENTIALS,
        _T,
        "Every referenced Secret exists and holds well-formed credentials; Expo accepts or refuses the "
        "token at the first EAS call.",
    ),
    Reason.SECRET_NOT_FOUND: ReasonInfo(
        COND_CREDENTIALS, _F, "A referenced Secret does not exist in the resource's namespace."
    ),
    Reason.KEY_NOT_FOUND: ReasonInfo(COND_CREDENTIALS, _F, "A referenced Secret lacks a required key."),
    Reason.INVALID_CREDENTIAL: ReasonInfo(
        COND_CREDENTIALS, _F, "A Secret key holds a malformed value (not a P-256 key, not JSON, ...)."
    ),
    Reason.UNAUTHORIZED: ReasonInfo(COND_CREDENTIALS, _F, "Expo rejected the access token."),
}
