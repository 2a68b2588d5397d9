"""`status`: everything the operator needs to resume after a restart, and the whole object."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from publishing_operator.api.base import ApiModel, Timestamp
from publishing_operator.api.enums import AttemptResult, ConditionStatus, Phase
from publishing_operator.api.names import (
    API_VERSION,
    CONDITION_TYPE_PATTERN,
    HISTORY_LIMIT,
    KIND,
    REASON_PATTERN,
)
from publishing_operator.api.spec import PublishingBuildSpec

# ---------------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------------


class Condition(ApiModel):
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


class BuildStatus(ApiModel):
    """The current attempt's EAS build, as last observed."""

    id: ShortText | None = None
    request_key: ShortText | None = None
    requested_at: Timestamp | None = None
    claimed_by: ShortText | None = None
    receipt_id: ShortText | None = None
    status: ShortText | None = None
    url: UrlText | None = None
    artifact_url: UrlText | None = None
    queue_position: int | None = Field(None, ge=0)
    estimated_wait_seconds: int | None = Field(None, ge=0)
    error_code: ShortText | None = None
    error_message: LongText | None = None
    created_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class SubmissionStatus(ApiModel):
    """The current attempt's EAS submission, as last observed."""

    id: ShortText | None = None
    request_key: ShortText | None = None
    requested_at: Timestamp | None = None
    claimed_by: ShortText | None = None
    status: ShortText | None = None
    url: UrlText | None = None
    error_code: ShortText | None = None
    error_message: LongText | None = None
    created_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class HistoryEntry(ApiModel):
    attempt: int = Field(ge=1)
    build_id: ShortText | None = None
    submission_id: ShortText | None = None
    result: AttemptResult
    reason: str = Field(pattern=REASON_PATTERN, min_length=1, max_length=1024)
    message: LongText | None = None
    finished_at: Timestamp


class PublishingBuildStatus(ApiModel):
    observed_generation: int | None = Field(None, ge=0)
    phase: Phase | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    attempt: int | None = Field(None, ge=0)
    request_count: int | None = Field(None, ge=0)
    start_time: Timestamp | None = None
    completion_time: Timestamp | None = None
    next_retry_time: Timestamp | None = None
    build: BuildStatus | None = None
    submission: SubmissionStatus | None = None
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    message: LongText | None = None
    retry_request: ShortText | None = None
    # spec.cancel as of this generation is spent: it ended a run, or a manual retry started a new
    # run after it. Only spec.cancel: true at a newer generation cancels again.
    cancel_handled_generation: int | None = Field(None, ge=0)

    def condition(self, type_: str) -> Condition | None:
        """The condition of that type, if present."""
        return next((c for c in self.conditions if c.type == type_), None)


# ---------------------------------------------------------------------------------------------------
# The whole object
# ---------------------------------------------------------------------------------------------------


class ObjectMeta(ApiModel):
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


class PublishingBuild(ApiModel):
    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PublishingBuildSpec
    status: PublishingBuildStatus | None = None
