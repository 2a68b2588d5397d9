"""The GraphQL transport to Expo: one POST per operation, every failure typed, idempotent operations
retried on transient errors (bounded, capped exponential backoff with jitter, `Retry-After`
honoured), one DEBUG log line and one metrics hook call per request. Creates are never retried
here: when their outcome is unknown the error says `ambiguous=True`.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr, ValidationError

from publishing_operator import __version__, backoff
from publishing_operator.expo.errors import (
    ErrorKind,
    ExpoError,
    classify_graphql_error,
    classify_http_status,
    make_error,
)
from publishing_operator.expo.models import (
    Actor,
    BackgroundJobReceipt,
    Build,
    Submission,
    UploadSession,
)
from publishing_operator.expo.operations import Operation
from publishing_operator.http import HttpResponse, PooledHttp

logger = logging.getLogger("publishing_operator.expo")

M = TypeVar("M", Build, Submission, Actor, BackgroundJobReceipt, UploadSession)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

MESSAGE_LIMIT = 1024  # Build.message limit enforced by eas-cli (API.md 2.3)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent operations on transient errors.

    `attempts` counts the first try. The wait before retry n is min(cap, initial * factor**(n-1)),
    scaled by a random jitter in [1 - jitter, 1]; a `Retry-After` from Expo replaces it when longer.
    A `Retry-After` above `max_retry_after` is not waited for inside the client: the error is raised
    with `retry_after` set so the caller can reschedule.
    """

    attempts: int = 3
    initial: float = 0.5
    factor: float = 2.0
    cap: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 30.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        base = backoff.exponential(retry, initial=self.initial, cap=self.cap, factor=self.factor)
        return backoff.spread(base, low=1.0 - self.jitter, high=1.0, rng=rng)


@dataclass(frozen=True)
class RequestOutcome:
    """What the metrics hook receives for every HTTP request to Expo."""

    operation: str
    outcome: str  # "ok" or the ErrorKind value in lower case
    duration: float
    http_status: int | None
    request_id: str | None
    attempt: int
    error_code: str | None = None


RequestHook = Callable[[RequestOutcome], None]


def _graphql_url(api_url: str) -> str:
    # Accept both the endpoint (https://api.expo.dev/graphql) and a bare base URL.
    parts = urlsplit(api_url)
    if parts.path in ("", "/"):
        return api_url.rstrip("/") + "/graphql"
    return api_url


MAX_ANSWER_BYTES = 16 * 2**20  # a GraphQL answer larger than this is refused, not read into memory
MESSAGE_SHOWN = 500  # characters of an error message from Expo kept (they end up in status.message)


def _text(value: Any, limit: int = 200) -> str | None:
    """A string field of an error from Expo, on one line and bounded; None when it is not a string."""
    if not isinstance(value, str) or not value:
        return None
    line = " ".join(value.split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


# The longest Retry-After honoured: an absurd one ("1e309", a date in the year 9999) must not park a
# resource for ever. Beyond it the wait is this long, and the step tries again.
MAX_RETRY_AFTER = 3600.0


def _retry_after(value: str | None, now: Callable[[], datetime]) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), within [0, MAX_RETRY_AFTER];
    None when there is none or it is not a number or a date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now()).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


class GraphQLTransport:
    """Sends operations with one token over a shared connection pool."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        http: PooledHttp,
        sleep: Sleep,
        clock: Clock,
        rng: random.Random,
        on_request: RequestHook | None,
    ) -> None:
        self.url = _graphql_url(api_url)
        self._token = SecretStr(token)
        self._timeout = timeout
        self.retry = retry
        self._http = http
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self._on_request = on_request

    def __repr__(self) -> str:
        return f"GraphQLTransport(url={self.url!r})"

    async def execute(self, op: Operation, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run `op`, retrying transient failures if it is idempotent; return its `data`."""
        data, _ = await self.execute_partial(op, variables)
        return data

    async def execute_partial(
        self, op: Operation, variables: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, ExpoError]]:
        """Like `execute`; for an operation made of independent aliased fields (`op.partial`), an
        error that names one of them in its `path` fails only that field: returned by alias."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._request(op, variables or {}, attempt)
            except ExpoError as exc:
                if not (op.idempotent and exc.is_transient and attempt < self.retry.attempts):
                    raise
                wait = self.retry.backoff(attempt, self.rng)
                if exc.retry_after is not None:
                    if exc.retry_after > self.retry.max_retry_after:
                        raise
                    wait = max(wait, exc.retry_after)
                logger.debug("expo %s: retry %d in %.2fs after %s", op.name, attempt, wait, exc.kind.value)
                await self.sleep(wait)

    async def _request(
        self, op: Operation, variables: Mapping[str, Any], attempt: int
    ) -> tuple[dict[str, Any], dict[str, ExpoError]]:
        started = self.clock()
        status: int | None = None
        request_id: str | None = None
        try:
            try:
                response = await self._http.request(
                    "POST",
                    self.url,
                    json={"query": op.document, "variables": dict(variables), "operationName": op.name},
                    headers={
                        "authorization": f"Bearer {self._token.get_secret_value()}",
                        "accept": "application/json",
                        "user-agent": f"publishing-operator/{__version__}",
                    },
                    timeout=self._timeout,
                    max_bytes=MAX_ANSWER_BYTES,
                )
            except httpx.TransportError as exc:
                raise self._transport_error(op, exc) from None
            content = response.content
            status = response.status_code
            headers = response.headers
            request_id = _text(headers.get("expo-request-id") or headers.get("x-request-id"))
            if content is None:
                raise make_error(
                    ErrorKind.UNKNOWN,
                    f"Expo's answer is larger than {MAX_ANSWER_BYTES // 2**20} MiB",
                    operation=op.name,
                    request_id=request_id,
                    http_status=status,
                    ambiguous=not op.idempotent,
                )
            data, field_errors = self._parse(op, response, content, request_id)
        except ExpoError as exc:
            self.report(
                op, started, exc.kind.value.lower(), status, exc.request_id or request_id, attempt, exc
            )
            raise
        self.report(op, started, "ok", status, request_id, attempt, None)
        return data, field_errors

    def _transport_error(self, op: Operation, exc: httpx.TransportError) -> ExpoError:
        # A connection that never opened means Expo never saw the request: not ambiguous.
        unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
        return make_error(
            ErrorKind.TRANSIENT,
            f"request to Expo {what}: {type(exc).__name__}",
            operation=op.name,
            ambiguous=not op.idempotent and not unsent,
        )

    def _parse(
        self, op: Operation, response: HttpResponse, content: bytes, request_id: str | None
    ) -> tuple[dict[str, Any], dict[str, ExpoError]]:
        status = response.status_code
        retry_after = _retry_after(response.headers.get("retry-after"), lambda: datetime.now(UTC))
        # A 5xx may come after Expo applied a mutation; 429 is refused up front.
        ambiguous = not op.idempotent and status >= 500
        try:
            body = json.loads(content) if content else None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        partial_data = body.get("data") if isinstance(body, dict) else None
        if op.partial and status < 400 and isinstance(partial_data, dict) and isinstance(errors, list):
            by_field = self._field_errors(op, errors, request_id, status)
            if by_field is not None:  # every error names its field: the others stand
                return partial_data, by_field
        if isinstance(errors, list) and errors:
            first: dict[str, Any] = errors[0] if isinstance(errors[0], dict) else {}
            raw_ext = first.get("extensions")
            ext: dict[str, Any] = raw_ext if isinstance(raw_ext, dict) else {}
            code = _text(ext.get("errorCode")) or _text(ext.get("code"))
            kind = classify_graphql_error(
                error_code=code,
                error_type=_text(ext.get("errorType")),
                is_transient=ext.get("isTransient") is True,
                http_status=status if status >= 400 else None,
            )
            message = _text(first.get("message"), MESSAGE_SHOWN) or "Expo returned an error"
            if code == "GRAPHQL_VALIDATION_FAILED" or message.startswith("Cannot query field"):
                message = f"Expo rejected the request document (API changed?): {message}"
            raise make_error(
                kind,
                message,
                operation=op.name,
                error_code=code,
                request_id=_text(ext.get("requestId")) or request_id,
                retry_after=retry_after if kind is ErrorKind.TRANSIENT else None,
                http_status=status,
                ambiguous=ambiguous and kind is ErrorKind.TRANSIENT,
            )
        if status >= 400:
            kind = classify_http_status(status)
            raise make_error(
                kind,
                "Expo rejected the access token (check the Expo token Secret)"
                if kind is ErrorKind.AUTH
                else f"Expo answered HTTP {status}",
                operation=op.name,
                request_id=request_id,
                retry_after=retry_after if kind is ErrorKind.TRANSIENT else None,
                http_status=status,
                ambiguous=ambiguous,
            )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise make_error(
                ErrorKind.UNKNOWN,
                "Expo answered without data",
                operation=op.name,
                request_id=request_id,
                http_status=status,
                ambiguous=not op.idempotent,
            )
        return data, {}

    def _field_errors(
        self, op: Operation, errors: list[Any], request_id: str | None, status: int
    ) -> dict[str, ExpoError] | None:
        """The errors of a partial answer by top-level field alias; None when one names none."""
        out: dict[str, ExpoError] = {}
        for error in errors:
            path = error.get("path") if isinstance(error, dict) else None
            if not (isinstance(path, list) and path and isinstance(path[0], str)):
                return None
            ext = error.get("extensions") if isinstance(error.get("extensions"), dict) else {}
            code = _text(ext.get("errorCode")) or _text(ext.get("code"))
            kind = classify_graphql_error(
                error_code=code,
                error_type=_text(ext.get("errorType")),
                is_transient=ext.get("isTransient") is True,
                http_status=None,
            )
            out.setdefault(
                path[0][:200],
                make_error(
                    kind,
                    _text(error.get("message"), MESSAGE_SHOWN) or "Expo returned an error",
                    operation=op.name,
                    error_code=code,
                    request_id=_text(ext.get("requestId")) or request_id,
                    http_status=status,
                ),
            )
        return out

    def report(
        self,
        op: Operation,
        started: float,
        outcome: str,
        status: int | None,
        request_id: str | None,
        attempt: int,
        error: ExpoError | None,
    ) -> None:
        duration = self.clock() - started
        logger.debug(
            "expo %s %s in %.3fs (http %s, attempt %d, request id %s%s)",
            op.name,
            outcome,
            duration,
            status if status is not None else "-",
            attempt,
            request_id or "-",
            f", code {error.error_code}" if error is not None and error.error_code else "",
        )
        if self._on_request is not None:
            self._on_request(
                RequestOutcome(
                    operation=op.name,
                    outcome=outcome,
                    duration=duration,
                    http_status=status,
                    request_id=request_id,
                    attempt=attempt,
                    error_code=error.error_code if error is not None else None,
                )
            )

    @staticmethod
    def dig(op: Operation, data: Any, *path: str) -> Any:
        """`data[path...]`; a missing step is an UNKNOWN error that names it."""
        for depth, key in enumerate(path):
            if not isinstance(data, dict) or key not in data:
                where = ".".join(path[: depth + 1])
                raise make_error(
                    ErrorKind.UNKNOWN,
                    f"Expo answered in an unexpected shape: no {where}",
                    operation=op.name,
                )
            data = data[key]
        return data

    def items(self, op: Operation, data: Any, *path: str) -> list[Any]:
        """`data[path...]` as a list; anything else is an UNKNOWN error."""
        found = self.dig(op, data, *path)
        if not isinstance(found, list):
            raise make_error(
                ErrorKind.UNKNOWN,
                f"Expo answered in an unexpected shape: {'.'.join(path)} is not a list",
                operation=op.name,
            )
        return found

    def model(self, op: Operation, cls: type[M], data: Any, *path: str) -> M:
        """`data[path...]` validated as `cls`; an unexpected shape is an UNKNOWN error naming the field
        (never its value: it may be huge, and it is Expo's, not ours to echo)."""
        data = self.dig(op, data, *path)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "type": "invalid"}
            field = ".".join(str(part) for part in first["loc"])[:200]
            raise make_error(
                ErrorKind.UNKNOWN,
                f"Expo answered in an unexpected shape: {cls.__name__}.{field or '(root)'}: {first['type']}",
                operation=op.name,
            ) from None
        except (TypeError, KeyError, AttributeError) as exc:
            raise make_error(
                ErrorKind.UNKNOWN,
                f"Expo answered in an unexpected shape: {cls.__name__}: {type(exc).__name__}",
                operation=op.name,
            ) from None
