"""What may differ between two API servers for the same request, taken out before comparing:
uids, timestamps, resourceVersion values (their presence stays), managedFields, continue tokens."""

from __future__ import annotations

import difflib
import json
from typing import Any

VARIABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "resourceVersion")


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "managedFields":
                continue
            if key in VARIABLE_META and isinstance(item, str) and item:
                out[key] = f"<{key}>"
            elif key == "continue" and isinstance(item, str) and item:
                out[key] = "<continue>"
            elif key == "uid" and isinstance(item, str):
                out[key] = "<uid>"
            else:
                out[key] = _scrub(item)
        return out
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def normalize(body: Any) -> Any:
    """`body` with the variable parts replaced by placeholders (JSON round-trip: a deep copy)."""
    return _scrub(json.loads(json.dumps(body)))


def status_fields(body: Any) -> dict[str, Any]:
    """The parts of a Status answer clients act on, its causes in one order.

    kube-apiserver reports the CEL errors of sibling fields in Go map order, which changes from one
    request to the next (measured: the same invalid object, causes `max, initial` in 2 of 8 runs and
    `initial, max` in the others): the causes, and the list in the message, are compared as sets."""
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return {"not-a-status": body}
    fields = {key: body.get(key) for key in ("status", "reason", "code", "details", "message")}
    details = fields["details"]
    if isinstance(details, dict) and isinstance(details.get("causes"), list):
        causes = sorted(details["causes"], key=lambda cause: json.dumps(cause, sort_keys=True))
        fields["details"] = {**details, "causes": causes}
    message = fields["message"]
    if isinstance(message, str) and message.endswith("]") and ": [" in message:
        head, _, listed = message.partition(": [")
        fields["message"] = f"{head}: [{', '.join(sorted(listed[:-1].split(', ')))}]"
    return fields


def assert_same(emulator: Any, real: Any) -> None:
    """Equal, or an AssertionError with a unified diff (emulator → real) of the JSON forms."""
    if emulator == real:
        return
    left = json.dumps(emulator, indent=1, sort_keys=True, default=str).splitlines()
    right = json.dumps(real, indent=1, sort_keys=True, default=str).splitlines()
    diff = "\n".join(difflib.unified_diff(left, right, "emulator", "kube-apiserver", lineterm="", n=2))
    raise AssertionError(f"the emulator differs from kube-apiserver:\n{diff}")
