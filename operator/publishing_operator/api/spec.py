"""`spec`: the request. Immutable after creation except `spec.cancel` (the CRD's CEL rules)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from publishing_operator import backoff
from publishing_operator.api.base import ApiModel, Duration, SecretKey, SecretName
from publishing_operator.api.enums import Platform, ReleaseStatus, Workflow
from publishing_operator.api.names import (
    ANDROID_VERSION_CODE_PATTERN,
    ASC_APP_ID_PATTERN,
    BUILD_VERSION_PATTERN,
    GIT_REF_PATTERN,
    MAX_BACKOFF,
    MAX_TIMEOUT,
    MSG_ANDROID_VERSION_CODE,
    MSG_BACKOFF_ORDER,
    MSG_MAX_BACKOFF,
    MSG_MAX_TIMEOUT,
    MSG_NO_DOTDOT,
    MSG_ONE_SOURCE,
    MSG_ONE_SUBMIT,
    MSG_POSITIVE_DURATION,
    MSG_ROLLOUT_IN_PROGRESS,
    MSG_SIGNING_NEEDS_ARCHIVE,
    MSG_SUBMIT_ANDROID_PLATFORM,
    MSG_SUBMIT_IOS_PLATFORM,
    PROFILE_PATTERN,
    RELATIVE_PATH_PATTERN,
    SHA256_PATTERN,
    TRACK_PATTERN,
    URL_PATTERN,
    UUID_PATTERN,
)
from publishing_operator.durations import duration_nanoseconds, parse_duration

# ---------------------------------------------------------------------------------------------------
# Spec
# ---------------------------------------------------------------------------------------------------


class SecretKeyRef(ApiModel):
    """One key of a Secret in the resource's own namespace."""

    name: SecretName
    key: SecretKey


class ExpoTokenSecretRef(SecretKeyRef):
    key: SecretKey = "token"


class ServiceAccountSecretRef(SecretKeyRef):
    key: SecretKey = "service-account.json"


class SecretRef(ApiModel):
    """A whole Secret in the resource's own namespace; the keys it needs are documented per use."""

    name: SecretName


class AppSpec(ApiModel):
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


class GithubSource(ApiModel):
    ref: str = Field(pattern=GIT_REF_PATTERN, min_length=1, max_length=255)
    base_directory: RelativePath | None = None


class ArchiveSource(ApiModel):
    url: str = Field(pattern=URL_PATTERN, max_length=2048)
    sha256: str | None = Field(None, pattern=SHA256_PATTERN, max_length=64)
    project_root_directory: RelativePath = "."
    workflow: Workflow = Workflow.MANAGED


class SourceSpec(ApiModel):
    github: GithubSource | None = None
    archive: ArchiveSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceSpec:
        if (self.github is None) == (self.archive is None):
            raise ValueError(MSG_ONE_SOURCE)
        return self


class ExpoSpec(ApiModel):
    token_secret_ref: ExpoTokenSecretRef


class SigningSpec(ApiModel):
    secret_ref: SecretRef


class IosSubmit(ApiModel):
    asc_app_id: str = Field(pattern=ASC_APP_ID_PATTERN, max_length=30)
    api_key_secret_ref: SecretRef
    testflight_groups: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20
    )
    changelog: str | None = Field(None, max_length=4000)


class AndroidSubmit(ApiModel):
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


class SubmitSpec(ApiModel):
    ios: IosSubmit | None = None
    android: AndroidSubmit | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SubmitSpec:
        if (self.ios is None) == (self.android is None):
            raise ValueError(MSG_ONE_SUBMIT)
        return self


def _positive(value: str) -> str:
    if duration_nanoseconds(value) <= 0:
        raise ValueError(MSG_POSITIVE_DURATION)
    return value


def _at_most(limit: str, message: str) -> AfterValidator:
    """A duration no longer than `limit` (the CRD has the same rule): waits a user can defend, and
    dates computed from them that cannot overflow."""
    ceiling = duration_nanoseconds(limit)

    def check(value: str) -> str:
        if duration_nanoseconds(value) > ceiling:
            raise ValueError(message)
        return value

    return AfterValidator(check)


PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
BackoffLimit = Annotated[PositiveDuration, _at_most(MAX_BACKOFF, MSG_MAX_BACKOFF)]
TimeoutDuration = Annotated[PositiveDuration, _at_most(MAX_TIMEOUT, MSG_MAX_TIMEOUT)]


class Backoff(ApiModel):
    initial: PositiveDuration = "2s"
    factor: float = Field(2, ge=1, le=10)
    max: BackoffLimit = "10m"

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
        """The wait after the `failures`-th failed attempt (1 → initial, 2 → initial*factor, capped).

        Never more than MAX_BACKOFF, even for a spec that bypassed validation (an older CRD, a
        hand-built model): a date computed from it cannot overflow."""
        ceiling = min(self.max_delay, parse_duration(MAX_BACKOFF)).total_seconds()
        seconds = backoff.exponential(
            failures,
            initial=min(self.initial_delay.total_seconds(), ceiling),
            cap=ceiling,
            factor=self.factor,
        )
        return timedelta(seconds=seconds)


class RetrySpec(ApiModel):
    max_attempts: int = Field(3, ge=1, le=10)
    backoff: Backoff = Field(default_factory=Backoff)


class Timeouts(ApiModel):
    build: TimeoutDuration = "2h"
    submit: TimeoutDuration = "1h"

    @property
    def build_timeout(self) -> timedelta:
        return parse_duration(self.build)

    @property
    def submit_timeout(self) -> timedelta:
        return parse_duration(self.submit)


class PublishingBuildSpec(ApiModel):
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
