"""The `publishing.dev/v1alpha1` `PublishingBuild` API as pydantic models.

`crds/publishingbuild.yaml` is the contract users read; these models mirror it field by field (a unit
test walks both trees). Field names are snake_case in Python and camelCase on the wire:
`model_dump(by_alias=True, exclude_none=True, mode="json")` gives exactly the Kubernetes JSON shape.

`PublishingBuildSpec.model_validate(spec)` is the operator's in-process spec validation: besides
types, patterns and limits it enforces the same single-object rules the CRD's CEL rules enforce, so
an object that reached the operator some other way (an older CRD, a test) fails the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from publishing_operator.durations import DURATION_PATTERN, parse_duration

GROUP = "publishing.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "publishingbuilds"
SINGULAR = "publishingbuild"
KIND = "PublishingBuild"

# Present only while EAS work is in flight, so finished resources always delete at once.
FINALIZER = "publishing.dev/eas-work"
# succeeded | failed | cancelled on finished resources: `kubectl get pb -l publishing.dev/result=failed`.
RESULT_LABEL = "publishing.dev/result"
# Any new value on a finished Failed/Cancelled resource starts a fresh attempt budget.
RETRY_ANNOTATION = "publishing.dev/retry"

COND_SUCCEEDED = "Succeeded"
COND_CREDENTIALS = "CredentialsReady"

HISTORY_LIMIT = 10

# Shared with the CRD's patterns (a test proves they are the same strings).
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PROFILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
BUILD_VERSION_PATTERN = r"^[0-9]+(\.[0-9]+){0,2}$"
ANDROID_VERSION_CODE_PATTERN = r"^[0-9]{1,10}$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
GIT_REF_PATTERN = r"^[^\s]+$"
RELATIVE_PATH_PATTERN = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"
URL_PATTERN = r"^https?://[^\s]+$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"

# The error code of a source refused by the operator's own policy (egress.py), not by Expo: the
# lifecycle fails such an attempt with Reason.SOURCE_NOT_ALLOWED instead of BuildFailed.
SOURCE_NOT_ALLOWED_CODE = "SOURCE_NOT_ALLOWED"
ASC_APP_ID_PATTERN = r"^[0-9]{1,30}$"
TRACK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9:._-]*$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

# Cross-field rule messages, the same text as the CRD's CEL rule messages.
MSG_ONE_SOURCE = "exactly one of source.github or source.archive must be set"
MSG_SIGNING_NEEDS_ARCHIVE = "signing is only allowed with an archive source (source.archive)"
MSG_SUBMIT_IOS_PLATFORM = "submit.ios is only allowed when app.platform is ios"
MSG_SUBMIT_ANDROID_PLATFORM = "submit.android is only allowed when app.platform is android"
MSG_ONE_SUBMIT = "exactly one of submit.ios or submit.android must be set"
MSG_ROLLOUT_IN_PROGRESS = "rollout is only allowed with releaseStatus inProgress"
MSG_ANDROID_VERSION_CODE = "buildVersion must be an integer versionCode when platform is android"
MSG_BACKOFF_ORDER = "backoff.initial must not be longer than backoff.max"
MSG_NO_DOTDOT = "must be a relative path without '..' segments"
MSG_POSITIVE_DURATION = "must be longer than zero"


def _utc_seconds(value: datetime) -> datetime:
    """Timestamps are UTC with second precision, like metav1.Time (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# A metav1.Time: RFC 3339 with a 'Z' on the wire, an aware UTC datetime in Python.
Timestamp = Annotated[
    datetime,
    AfterValidator(_utc_seconds),
    PlainSerializer(_rfc3339, return_type=str, when_used="json"),
]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
SecretName = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)]
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored like a client does."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        """The Kubernetes JSON shape: camelCase, no nulls, RFC 3339 timestamps."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------------------


class Phase(StrEnum):
    """The one-word summary in `status.phase` (conditions carry the detail)."""

    PENDING = "Pending"
    QUEUED = "Queued"
    BUILDING = "Building"
    SUBMITTING = "Submitting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


FINISHED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
# EAS work exists: polled by timers, guarded by the finalizer, cancelled on deletion.
IN_FLIGHT_PHASES = frozenset({Phase.BUILDING, Phase.SUBMITTING})


class Platform(StrEnum):
    IOS = "ios"
    ANDROID = "android"


class Workflow(StrEnum):
    """EAS workflow of an archive project: managed (Expo prebuild) or generic (native folders)."""

    MANAGED = "managed"
    GENERIC = "generic"


class ReleaseStatus(StrEnum):
    """Google Play release status of the submitted track release."""

    COMPLETED = "completed"
    DRAFT = "draft"
    HALTED = "halted"
    IN_PROGRESS = "inProgress"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class AttemptResult(StrEnum):
    """How one attempt ended, in `status.history[].result`."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


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
    # Succeeded=True
    SUCCEEDED = "Succeeded"
    # Succeeded=False
    BUILD_FAILED = "BuildFailed"
    SUBMISSION_FAILED = "SubmissionFailed"
    RETRIES_EXHAUSTED = "RetriesExhausted"
    TIMEOUT = "Timeout"
    CANCELLED = "Cancelled"
    INVALID_SPEC = "InvalidSpec"
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
    Reason.SUCCEEDED: ReasonInfo(
        COND_SUCCEEDED, _T, "The build finished and, when requested, the submission was accepted."
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
    Reason.SOURCE_NOT_ALLOWED: ReasonInfo(
        COND_SUCCEEDED,
        _F,
        "The archive source breaks the operator's archive source policy (PUBLISHING_ARCHIVE_* settings).",
    ),
    Reason.VALIDATED: ReasonInfo(
        COND_CREDENTIALS, _T, "Every referenced Secret exists and holds well-formed credentials."
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


# ---------------------------------------------------------------------------------------------------
# Spec
# ---------------------------------------------------------------------------------------------------


class SecretKeyRef(_Model):
    """One key of a Secret in the resource's own namespace."""

    name: SecretName
    key: SecretKey


class ExpoTokenSecretRef(SecretKeyRef):
    key: SecretKey = "token"


class ServiceAccountSecretRef(SecretKeyRef):
    key: SecretKey = "service-account.json"


class SecretRef(_Model):
    """A whole Secret in the resource's own namespace; the keys it needs are documented per use."""

    name: SecretName


class AppSpec(_Model):
    project_id: str = Field(pattern=UUID_PATTERN, max_length=36)
    platform: Platform
    profile: str = Field("production", pattern=PROFILE_PATTERN, min_length=1, max_length=64)
    build_version: str | None = Field(None, pattern=BUILD_VERSION_PATTERN, max_length=32)

    @model_validator(mode="after")
    def _android_version_code(self) -> AppSpec:
        if (
            self.platform is Platform.ANDROID
            and self.build_version is not None
            and not _fullmatch(ANDROID_VERSION_CODE_PATTERN, self.build_version)
        ):
            raise ValueError(MSG_ANDROID_VERSION_CODE)
        return self


def _fullmatch(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


def _relative_path(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError(MSG_NO_DOTDOT)
    return value


RelativePath = Annotated[
    str, Field(pattern=RELATIVE_PATH_PATTERN, min_length=1, max_length=256), AfterValidator(_relative_path)
]


class GithubSource(_Model):
    ref: str = Field(pattern=GIT_REF_PATTERN, min_length=1, max_length=255)
    base_directory: RelativePath | None = None


class ArchiveSource(_Model):
    url: str = Field(pattern=URL_PATTERN, max_length=2048)
    sha256: str | None = Field(None, pattern=SHA256_PATTERN, max_length=64)
    project_root_directory: RelativePath = "."
    workflow: Workflow = Workflow.MANAGED


class SourceSpec(_Model):
    github: GithubSource | None = None
    archive: ArchiveSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceSpec:
        if (self.github is None) == (self.archive is None):
            raise ValueError(MSG_ONE_SOURCE)
        return self


class ExpoSpec(_Model):
    token_secret_ref: ExpoTokenSecretRef


class SigningSpec(_Model):
    secret_ref: SecretRef


class IosSubmit(_Model):
    asc_app_id: str = Field(pattern=ASC_APP_ID_PATTERN, max_length=30)
    api_key_secret_ref: SecretRef
    testflight_groups: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20
    )
    changelog: str | None = Field(None, max_length=4000)


class AndroidSubmit(_Model):
    track: str = Field("internal", pattern=TRACK_PATTERN, min_length=1, max_length=64)
    release_status: ReleaseStatus = ReleaseStatus.COMPLETED
    rollout: float | None = Field(None, ge=0, le=1)
    changes_not_sent_for_review: bool = False
    service_account_key_secret_ref: ServiceAccountSecretRef
    changelog: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _rollout_in_progress(self) -> AndroidSubmit:
        if self.rollout is not None and self.release_status is not ReleaseStatus.IN_PROGRESS:
            raise ValueError(MSG_ROLLOUT_IN_PROGRESS)
        return self


class SubmitSpec(_Model):
    ios: IosSubmit | None = None
    android: AndroidSubmit | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SubmitSpec:
        if (self.ios is None) == (self.android is None):
            raise ValueError(MSG_ONE_SUBMIT)
        return self


def _positive(value: str) -> str:
    if parse_duration(value) <= timedelta(0):
        raise ValueError(MSG_POSITIVE_DURATION)
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


class Backoff(_Model):
    initial: PositiveDuration = "2s"
    factor: float = Field(2, ge=1, le=10)
    max: PositiveDuration = "10m"

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.initial_delay > self.max_delay:
            raise ValueError(MSG_BACKOFF_ORDER)
        return self

    @property
    def initial_delay(self) -> timedelta:
        return parse_duration(self.initial)

    @property
    def max_delay(self) -> timedelta:
        return parse_duration(self.max)

    def delay(self, failures: int) -> timedelta:
        """The wait after the `failures`-th failed attempt (1 → initial, 2 → initial*factor, capped)."""
        cap = self.max_delay.total_seconds()
        seconds = self.initial_delay.total_seconds() * self.factor ** min(max(failures - 1, 0), 64)
        return timedelta(seconds=min(seconds, cap))


class RetrySpec(_Model):
    max_attempts: int = Field(3, ge=1, le=10)
    backoff: Backoff = Field(default_factory=Backoff)


class Timeouts(_Model):
    build: PositiveDuration = "2h"
    submit: PositiveDuration = "1h"

    @property
    def build_timeout(self) -> timedelta:
        return parse_duration(self.build)

    @property
    def submit_timeout(self) -> timedelta:
        return parse_duration(self.submit)


class PublishingBuildSpec(_Model):
    app: AppSpec
    source: SourceSpec
    expo: ExpoSpec
    signing: SigningSpec | None = None
    submit: SubmitSpec | None = None
    retry: RetrySpec = Field(default_factory=RetrySpec)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    ttl_seconds_after_finished: int | None = Field(None, ge=0, le=2147483647)
    cancel: bool = False

    @model_validator(mode="after")
    def _cross_field(self) -> PublishingBuildSpec:
        if self.signing is not None and self.source.archive is None:
            raise ValueError(MSG_SIGNING_NEEDS_ARCHIVE)
        if self.submit is not None:
            if self.submit.ios is not None and self.app.platform is not Platform.IOS:
                raise ValueError(MSG_SUBMIT_IOS_PLATFORM)
            if self.submit.android is not None and self.app.platform is not Platform.ANDROID:
                raise ValueError(MSG_SUBMIT_ANDROID_PLATFORM)
        return self


# ---------------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------------


class Condition(_Model):
    """metav1.Condition."""

    type: str = Field(pattern=CONDITION_TYPE_PATTERN, max_length=316)
    status: ConditionStatus
    reason: str = Field(pattern=REASON_PATTERN, min_length=1, max_length=1024)
    message: str = Field(max_length=32768)
    last_transition_time: Timestamp
    observed_generation: int | None = Field(None, ge=0)


ShortText = Annotated[str, Field(max_length=256)]
LongText = Annotated[str, Field(max_length=4096)]
UrlText = Annotated[str, Field(max_length=2048)]


class BuildStatus(_Model):
    """The current attempt's EAS build, as last observed."""

    id: ShortText | None = None
    request_key: ShortText | None = None
    requested_at: Timestamp | None = None
    status: ShortText | None = None
    url: UrlText | None = None
    artifact_url: UrlText | None = None
    queue_position: int | None = Field(None, ge=0)
    estimated_wait_seconds: int | None = Field(None, ge=0)
    error_code: ShortText | None = None
    error_message: LongText | None = None
    created_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class SubmissionStatus(_Model):
    """The current attempt's EAS submission, as last observed."""

    id: ShortText | None = None
    request_key: ShortText | None = None
    requested_at: Timestamp | None = None
    status: ShortText | None = None
    url: UrlText | None = None
    error_code: ShortText | None = None
    error_message: LongText | None = None
    created_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class HistoryEntry(_Model):
    attempt: int = Field(ge=1)
    build_id: ShortText | None = None
    submission_id: ShortText | None = None
    result: AttemptResult
    reason: str = Field(pattern=REASON_PATTERN, min_length=1, max_length=1024)
    message: LongText | None = None
    finished_at: Timestamp


class PublishingBuildStatus(_Model):
    observed_generation: int | None = Field(None, ge=0)
    phase: Phase | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    attempt: int | None = Field(None, ge=0)
    start_time: Timestamp | None = None
    completion_time: Timestamp | None = None
    next_retry_time: Timestamp | None = None
    build: BuildStatus | None = None
    submission: SubmissionStatus | None = None
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    message: LongText | None = None
    retry_request: ShortText | None = None

    def condition(self, type_: str) -> Condition | None:
        """The condition of that type, if present."""
        return next((c for c in self.conditions if c.type == type_), None)


# ---------------------------------------------------------------------------------------------------
# The whole object
# ---------------------------------------------------------------------------------------------------


class ObjectMeta(_Model):
    """The metadata fields the operator reads; everything else is ignored."""

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)


class PublishingBuild(_Model):
    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PublishingBuildSpec
    status: PublishingBuildStatus | None = None
