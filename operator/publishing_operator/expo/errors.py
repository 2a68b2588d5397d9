"""One typed error for every way a call to Expo can fail, classified the way the lifecycle needs.

Classification (API.md section 6):
- TRANSIENT: network errors, timeouts, HTTP 5xx, HTTP 429 (with its Retry-After), and GraphQL errors
  with `extensions.isTransient` -- except the free-tier codes, which Expo may flag transient but
  which do not go away by retrying.
- AUTH: HTTP 401 (Expo answers a bad token with 401 and no GraphQL errors) or `UNAUTHORIZED_ERROR`.
- USER: `errorType: USER`, `VALIDATION_ERROR`, other HTTP 4xx: the request itself is wrong.
- UNKNOWN: everything else (malformed answers, schema drift).

A create call (build or submission) that failed after the request may have reached Expo is
`ambiguous`: Expo may or may not have created the thing, so the caller must look it up (by its
request key) before creating again.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    TRANSIENT = "TRANSIENT"
    AUTH = "AUTH"
    USER = "USER"
    UNKNOWN = "UNKNOWN"


# Free-tier limits may arrive with isTransient=true but retrying does not help (eas-cli excludes them).
FREE_TIER_CODES = frozenset(
    {
        "EAS_BUILD_FREE_TIER_DISABLED",
        "EAS_BUILD_FREE_TIER_DISABLED_IOS",
        "EAS_BUILD_FREE_TIER_DISABLED_ANDROID",
        "EAS_BUILD_FREE_TIER_LIMIT_EXCEEDED",
        "EAS_BUILD_FREE_TIER_IOS_LIMIT_EXCEEDED",
        "EAS_BUILD_RESOURCE_CLASS_NOT_AVAILABLE_IN_FREE_TIER",
    }
)
# Build-request codes that describe a temporary state of Expo, not a fault of the request.
TRANSIENT_CODES = frozenset({"EAS_BUILD_DOWN_FOR_MAINTENANCE", "EAS_BUILD_TOO_MANY_PENDING_BUILDS"})
AUTH_CODES = frozenset({"UNAUTHORIZED_ERROR", "UNAUTHENTICATED"})
USER_CODES = frozenset(
    {
        "VALIDATION_ERROR",
        "EXPERIENCE_NOT_FOUND",
        "ENTITY_NOT_FOUND",
        "EAS_BUILD_LEGACY_RESOURCE_CLASS_NOT_AVAILABLE",
        "TURTLE_DEPRECATED_JOB_FORMAT",
        "EAS_CLI_UPGRADE_REQUIRED",
        "SUDO_MODE_REQUIRED",
    }
)


class ExpoError(Exception):
    """A failed Expo operation. `str()` is one line that a user can act on; never contains secrets."""

    kind: ErrorKind = ErrorKind.UNKNOWN  # set by each subclass; `make_error` picks the subclass

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        error_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        http_status: int | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.error_code = error_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.http_status = http_status
        self.ambiguous = ambiguous

    @property
    def is_transient(self) -> bool:
        return self.kind is ErrorKind.TRANSIENT

    def __str__(self) -> str:
        details = [f"operation {self.operation}"]
        if self.error_code:
            details.append(f"code {self.error_code}")
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.retry_after is not None:
            details.append(f"retry after {self.retry_after:g}s")
        if self.request_id:
            details.append(f"request id {self.request_id}")
        if self.ambiguous:
            details.append("outcome unknown: look the result up before creating again")
        return f"{self.message} ({', '.join(details)})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind.value}, operation={self.operation!r}, "
            f"error_code={self.error_code!r}, http_status={self.http_status!r}, "
            f"request_id={self.request_id!r}, ambiguous={self.ambiguous!r}, "
            f"message={self.message!r})"
        )


class ExpoTransientError(ExpoError):
    kind = ErrorKind.TRANSIENT


class ExpoAuthError(ExpoError):
    kind = ErrorKind.AUTH


class ExpoUserError(ExpoError):
    kind = ErrorKind.USER


class ExpoUnknownError(ExpoError):
    kind = ErrorKind.UNKNOWN


_CLASSES: dict[ErrorKind, type[ExpoError]] = {
    ErrorKind.TRANSIENT: ExpoTransientError,
    ErrorKind.AUTH: ExpoAuthError,
    ErrorKind.USER: ExpoUserError,
    ErrorKind.UNKNOWN: ExpoUnknownError,
}


def make_error(
    kind: ErrorKind,
    message: str,
    *,
    operation: str,
    error_code: str | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
    http_status: int | None = None,
    ambiguous: bool = False,
) -> ExpoError:
    """The error subclass for `kind` (callers may catch either the subclass or `ExpoError`)."""
    return _CLASSES[kind](
        message,
        operation=operation,
        error_code=error_code,
        request_id=request_id,
        retry_after=retry_after,
        http_status=http_status,
        ambiguous=ambiguous,
    )


def classify_graphql_error(
    *, error_code: str | None, error_type: str | None, is_transient: bool, http_status: int | None
) -> ErrorKind:
    """Kind of a GraphQL error from its `extensions` (and the HTTP status it came with)."""
    if error_code in FREE_TIER_CODES:
        return ErrorKind.USER
    if http_status == 401 or error_code in AUTH_CODES:
        return ErrorKind.AUTH
    if is_transient or error_code in TRANSIENT_CODES:
        return ErrorKind.TRANSIENT
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return ErrorKind.TRANSIENT
    if error_type == "USER" or error_code in USER_CODES:
        return ErrorKind.USER
    if http_status is not None and 400 <= http_status < 500:
        return ErrorKind.USER
    return ErrorKind.UNKNOWN


def classify_http_status(status: int) -> ErrorKind:
    """Kind of an HTTP failure that carried no GraphQL errors."""
    if status == 401:
        return ErrorKind.AUTH
    if status == 429 or status >= 500 or status == 408:
        return ErrorKind.TRANSIENT
    if 400 <= status < 500:
        return ErrorKind.USER
    return ErrorKind.UNKNOWN
