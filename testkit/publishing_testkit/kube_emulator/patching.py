"""The three patch formats of the API server: JSON merge patch, JSON patch, strategic merge patch.

Functions take and return plain JSON values and never mutate their input. Errors are `ApiError`s
with the codes a real API server answers (400 for a malformed patch, 422 for a failed `test`).
"""

from __future__ import annotations

import copy
from typing import Any

from publishing_testkit.kube_emulator.bodies import go_json_type
from publishing_testkit.kube_emulator.errors import ApiError, bad_request, unprocessable

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

# Lists in built-in kinds that a strategic merge patch merges by key instead of replacing.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "conditions": "type",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Enough of the strategic merge patch for kubectl on built-in kinds.

    Maps merge like a merge patch; `$patch: replace|delete` and the `$setElementOrder`/`$retainKeys`
    directives are honoured or dropped; lists with a known merge key merge item by item; other
    lists are replaced (as the real server does for lists without a patch strategy).
    """
    if isinstance(patch, list):
        key = _MERGE_KEYS.get(field)
        if key is None or not isinstance(target, list):
            return [_strip_directives(item) for item in patch]
        merged = [copy.deepcopy(item) for item in target]
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                continue
            index = next(
                (i for i, old in enumerate(merged) if isinstance(old, dict) and old.get(key) == item[key]),
                None,
            )
            if item.get("$patch") == "delete":
                if index is not None:
                    merged.pop(index)
            elif index is None:
                merged.append(_strip_directives(item))
            else:
                merged[index] = strategic_merge_patch(merged[index], item, "")
        return merged
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value, key)
            if result[key] is None:
                result.pop(key)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return copy.deepcopy(value)


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split_pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [_unescape(part) for part in path.split("/")[1:]] if path else []


# kube-apiserver answers every failure to apply a JSON patch (a failed test, a missing path, an
# unknown op) with this message alone, 422 Invalid, and keeps the detail to itself.
REJECTED = "the server rejected our request due to an error in our request"


def _rejected() -> ApiError:
    return unprocessable(REJECTED)


def _path_not_found(path: str) -> ApiError:
    return _rejected()


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    current = doc
    for part in parts:
        if isinstance(current, dict):
            if part not in current:
                raise _path_not_found(path)
            current = current[part]
        elif isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                raise _path_not_found(path) from None
        else:
            raise _path_not_found(path)
    return current


def _add(doc: Any, parts: list[str], value: Any, path: str, replace: bool) -> Any:
    if not parts:
        return copy.deepcopy(value)
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        # `replace` of a missing key adds it: kube-apiserver's JSON patch library allows that.
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(copy.deepcopy(value))
        else:
            try:
                index = int(last)
            except ValueError:
                raise _rejected() from None
            if replace:
                if not 0 <= index < len(parent):
                    raise _rejected()
                parent[index] = copy.deepcopy(value)
            else:
                if not 0 <= index <= len(parent):
                    raise _rejected()
                parent.insert(index, copy.deepcopy(value))
    else:
        raise _rejected()
    return doc


def _remove(doc: Any, parts: list[str], path: str) -> tuple[Any, Any]:
    if not parts:
        raise _rejected()
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _rejected()
        return doc, parent.pop(last)
    if isinstance(parent, list):
        try:
            return doc, parent.pop(int(last))
        except (ValueError, IndexError):
            raise _rejected() from None
    raise _rejected()


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902, all six operations. A failed `test` is HTTP 422, as on a real server."""
    if not isinstance(operations, list):
        raise bad_request(
            f"error decoding patch: json: cannot unmarshal {go_json_type(operations)} "
            "into Go value of type []handlers.jsonPatchOp"
        )
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise bad_request(f"invalid JSON patch operation: {operation!r}")
        op = operation["op"]
        path = operation.get("path", "")
        parts = _split_pointer(path)
        if op == "add":
            doc = _add(doc, parts, operation.get("value"), path, replace=False)
        elif op == "replace":
            doc = _add(doc, parts, operation.get("value"), path, replace=True)
        elif op == "remove":
            doc, _ = _remove(doc, parts, path)
        elif op in ("move", "copy"):
            source = operation.get("from", "")
            source_parts = _split_pointer(source)
            if op == "move":
                doc, value = _remove(doc, source_parts, source)
            else:
                value = copy.deepcopy(_resolve(doc, source_parts, source))
            doc = _add(doc, parts, value, path, replace=False)
        elif op == "test":
            actual = _resolve(doc, parts, path)
            if actual != operation.get("value"):
                raise _rejected()
        else:
            raise _rejected()
    return doc
