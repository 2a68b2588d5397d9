"""The model base (camelCase on the wire) and the field types every part of the API uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from publishing_operator.api.names import SECRET_KEY_PATTERN, SECRET_NAME_PATTERN
from publishing_operator.durations import DURATION_PATTERN


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


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored like a client does."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        """The Kubernetes JSON shape: camelCase, no nulls, RFC 3339 timestamps."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
