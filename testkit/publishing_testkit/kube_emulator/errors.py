"""API errors as the Kubernetes API server reports them: an HTTP code and a `Status` body."""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]


class ApiError(Exception):
    """An error answered as `kind: Status` with the same `reason`/`code` a real API server uses."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JsonObject | None = None,
        body: JsonObject | None = None,
        text: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self._body = body
        self.text = text  # answered as text/plain instead of a Status (Go's http.NotFound)
        self.warnings: list[str] = []  # Warning headers sent with the error (e.g. unknown fields)

    def to_status(self) -> JsonObject:
        if self._body is not None:
            return self._body
        status: JsonObject = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def _details(plural: str, group: str, name: str | None) -> JsonObject:
    details: JsonObject = {"kind": plural}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def deleted(plural: str, group: str, name: str, uid: str) -> JsonObject:
    """What DELETE answers when the object is gone at once (no finalizers): a Status of success,
    not the object (registry.Store without ReturnDeletedObject, which most kinds are)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {**_details(plural, group, name), "uid": uid},
    }


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{_qualified(plural, group)} "{name}" not found', _details(plural, group, name)
    )


def page_not_found() -> ApiError:
    """What kube-apiserver answers for a path no API group handles, or an unknown resource of a
    group served by apiextensions (custom resources): Go's plain-text http.NotFound, not a Status.
    The core group (/api/v1) answers resource_not_found() instead."""
    return ApiError(404, "NotFound", "404 page not found", text="404 page not found\n")


def resource_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(plural, group)} "{name}" already exists',
        _details(plural, group, name),
    )


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        _details(plural, group, name),
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    """kube-apiserver's answer to a request it cannot authenticate (the body names no reason why)."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(plural: str, group: str, name: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden", message, _details(plural, group, name))


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; each cause is (reason like FieldValueInvalid, field, message)."""
    what = f"{kind}.{group}" if group else kind
    texts = list(dict.fromkeys(f"{field}: {text}" for _, field, text in causes))  # utilerrors.Aggregate
    message = f'{what} "{name}" is invalid: ' + (
        texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    )
    return ApiError(
        422,
        "Invalid",
        message,
        {
            "name": name,
            **({"group": group} if group else {}),
            "kind": kind,
            "causes": [{"reason": reason, "message": text, "field": field} for reason, field, text in causes],
        },
    )


def invalid_list_options(field: str, reason: str, text: str) -> ApiError:
    """422 for list/watch query parameters that do not go together (meta.k8s.io ListOptions)."""
    return ApiError(
        422,
        "Invalid",
        f'ListOptions.meta.k8s.io "" is invalid: {field}: {text}',
        {
            "group": "meta.k8s.io",
            "kind": "ListOptions",
            "causes": [{"reason": reason, "message": text, "field": field}],
        },
    )


def unprocessable(message: str) -> ApiError:
    """422 without field causes, e.g. a failed JSON-patch `test` operation."""
    return ApiError(422, "Invalid", message, {})
