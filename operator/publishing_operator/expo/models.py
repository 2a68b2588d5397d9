"""Typed views of what Expo returns, and the secret material the client sends.

Field names follow Expo's GraphQL names (camelCase) so the raw JSON validates straight into them.
`platform` is converted to the operator's own `Platform` ("ios"/"android").
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    computed_field,
    field_validator,
    model_validator,
)

from publishing_operator.api import Platform, Workflow

__all__ = [
    "Actor",
    "AndroidSigning",
    "AscApiKey",
    "BackgroundJobReceipt",
    "BackgroundJobState",
    "Build",
    "BuildArtifacts",
    "BuildError",
    "EasBuildState",
    "EasSubmissionState",
    "IosSigning",
    "Platform",
    "SigningMaterial",
    "Submission",
    "SubmissionError",
    "UploadSession",
    "Workflow",
]

DASHBOARD = "https://expo.dev"


# A state name Expo may add after this operator was written: followed as unknown, not refused.
_STATE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


class _OpenStates(StrEnum):
    """An Expo state enum that also holds states this operator does not know yet (a new EAS build
    status must not stop every resource that meets it): `known` tells them apart."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str) or not _STATE_NAME.match(value):
            return None
        unknown = str.__new__(cls, value)
        unknown._name_ = value
        unknown._value_ = value
        return unknown

    @property
    def known(self) -> bool:
        return self._value_ in type(self)._value2member_map_


class EasBuildState(_OpenStates):
    NEW = "NEW"
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    PENDING_CANCEL = "PENDING_CANCEL"
    FINISHED = "FINISHED"
    ERRORED = "ERRORED"
    CANCELED = "CANCELED"


class EasSubmissionState(_OpenStates):
    AWAITING_BUILD = "AWAITING_BUILD"
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    FINISHED = "FINISHED"
    ERRORED = "ERRORED"
    CANCELED = "CANCELED"


class BackgroundJobState(StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


def _truncated(limit: int) -> BeforeValidator:
    """Expo's free text (error messages, codes) cut to what the resource's status can hold."""

    def cut(value: Any) -> Any:
        return value[: limit - 1] + "\u2026" if isinstance(value, str) and len(value) > limit else value

    return BeforeValidator(cut)


def _dropped_beyond(limit: int) -> BeforeValidator:
    """A URL longer than the status can hold is left out rather than cut (a cut URL is a wrong one)."""
    return BeforeValidator(lambda value: None if isinstance(value, str) and len(value) > limit else value)


def _non_negative(value: Any) -> Any:
    """A negative queue position or wait is no information: left out."""
    return None if isinstance(value, int) and not isinstance(value, bool) and value < 0 else value


# Bounds of the status fields these values go to (api/status.py), so no status write is refused.
Message = Annotated[str, _truncated(2000)]
Code = Annotated[str, _truncated(200)]
Url = Annotated[str | None, _dropped_beyond(2048)]
Identifier = Annotated[str, Field(min_length=1, max_length=200)]
Count = Annotated[int | None, BeforeValidator(_non_negative)]


def _platform(value: Any) -> Any:
    # Expo's AppPlatform is IOS/ANDROID; the operator speaks ios/android.
    return value.lower() if isinstance(value, str) else value


class _ExpoModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Account(_ExpoModel):
    id: str | None = None
    name: Identifier


class AppRef(_ExpoModel):
    id: str
    slug: Identifier
    ownerAccount: Account


class ActorRef(_ExpoModel):
    id: str


class Actor(_ExpoModel):
    """Who the token belongs to (`meActor`)."""

    id: str
    typename: str = Field(alias="__typename")
    displayName: str | None = None
    accounts: tuple[Account, ...] = ()


class BuildArtifacts(_ExpoModel):
    buildUrl: Url = None
    applicationArchiveUrl: Url = None


class BuildError(_ExpoModel):
    errorCode: Code
    message: Message


class SubmissionError(_ExpoModel):
    errorCode: Code | None = None
    message: Message | None = None


class Build(_ExpoModel):
    id: Identifier
    status: EasBuildState
    platform: Platform
    buildProfile: str | None = None
    message: str | None = None
    gitRef: str | None = None
    gitCommitHash: str | None = None
    queuePosition: Count = None
    estimatedWaitTimeLeftSeconds: Count = None
    artifacts: BuildArtifacts | None = None
    error: BuildError | None = None
    createdAt: datetime
    updatedAt: datetime | None = None
    completedAt: datetime | None = None
    app: AppRef
    initiatingActor: ActorRef | None = None  # who asked for the build (a robot token, a person)

    @field_validator("platform", mode="before")
    @classmethod
    def _expo_platform(cls, value: Any) -> Any:
        return _platform(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        """The build's page on the Expo dashboard."""
        return f"{DASHBOARD}/accounts/{self.app.ownerAccount.name}/projects/{self.app.slug}/builds/{self.id}"


class Submission(_ExpoModel):
    id: Identifier
    status: EasSubmissionState
    platform: Platform
    error: SubmissionError | None = None
    createdAt: datetime
    updatedAt: datetime | None = None
    completedAt: datetime | None = None
    submittedBuildId: str | None = None
    app: AppRef

    @field_validator("platform", mode="before")
    @classmethod
    def _expo_platform(cls, value: Any) -> Any:
        return _platform(value)

    @model_validator(mode="before")
    @classmethod
    def _submitted_build_id(cls, data: Any) -> Any:
        # Expo nests the build (`submittedBuild { id }`); only its id is kept.
        if isinstance(data, dict) and "submittedBuild" in data:
            build = data["submittedBuild"] or {}
            return {**data, "submittedBuildId": build.get("id")}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        """The submission's page on the Expo dashboard (path pattern inferred from the build page)."""
        owner, slug = self.app.ownerAccount.name, self.app.slug
        return f"{DASHBOARD}/accounts/{owner}/projects/{slug}/submissions/{self.id}"


class BackgroundJobReceipt(_ExpoModel):
    id: str
    state: BackgroundJobState
    tries: int = 0
    willRetry: bool = False
    resultId: str | None = None
    resultType: str | None = None
    errorCode: str | None = None
    errorMessage: str | None = None


class UploadSession(_ExpoModel):
    """`createUploadSession` answer: a signed URL, the headers to PUT with, and the key to build from."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    bucketKey: str

    def __repr__(self) -> str:  # the URL carries a signature: keep it out of logs
        return f"UploadSession(bucketKey={self.bucketKey!r})"

    __str__ = __repr__


class _SecretModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AscApiKey(_SecretModel):
    """An App Store Connect API key: the .p8 text, its key id and the issuer id."""

    key_p8: SecretStr
    key_id: str
    issuer_id: str


class IosSigning(_SecretModel):
    target_name: str
    provisioning_profile_base64: SecretStr
    p12_base64: SecretStr
    p12_password: SecretStr


class AndroidSigning(_SecretModel):
    keystore_base64: SecretStr
    keystore_password: SecretStr
    key_alias: str
    key_password: SecretStr | None = None


class SigningMaterial(_SecretModel):
    """Build credentials embedded in the job (Expo's job.secrets); exactly one platform is set."""

    ios: IosSigning | None = None
    android: AndroidSigning | None = None

    def job_secrets(self, platform: Platform) -> dict[str, Any]:
        """The `secrets` job input for `platform` (secret values revealed only here, at the wire)."""
        if platform is Platform.IOS:
            if self.ios is None:
                raise ValueError("iOS signing material is missing")
            return {
                "buildCredentials": [
                    {
                        "targetName": self.ios.target_name,
                        "provisioningProfileBase64": self.ios.provisioning_profile_base64.get_secret_value(),
                        "distributionCertificate": {
                            "dataBase64": self.ios.p12_base64.get_secret_value(),
                            "password": self.ios.p12_password.get_secret_value(),
                        },
                    }
                ]
            }
        if self.android is None:
            raise ValueError("Android signing material is missing")
        keystore: dict[str, Any] = {
            "dataBase64": self.android.keystore_base64.get_secret_value(),
            "keystorePassword": self.android.keystore_password.get_secret_value(),
            "keyAlias": self.android.key_alias,
        }
        if self.android.key_password is not None:
            keystore["keyPassword"] = self.android.key_password.get_secret_value()
        return {"buildCredentials": {"keystore": keystore}}
