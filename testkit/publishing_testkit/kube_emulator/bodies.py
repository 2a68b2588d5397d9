"""Request bodies decoded as kube-apiserver decodes them: any body is a value or a 400, never a 500.

What the Go API server does (measured against kube-apiserver 1.37 with the probes in
tests/integration/test_emulator_bodies.py):

- JSON numbers: an integer literal that fits int64 stays an integer; a bigger one becomes a float64
  (so a schema `type: integer` refuses it with 422); a number beyond float64 is a 400 ("cannot
  unmarshal number ... into Go value of type float64"). `NaN` and `Infinity` are not JSON: 400.
- Strings: invalid UTF-8 and lone UTF-16 surrogates (`"\\ud800"`) become U+FFFD, as Go's decoder does.
- Nesting: encoding/json refuses more than 10000 levels with 400 "exceeded max depth". The emulator
  is recursive Python and stops earlier (`PROCESSABLE_DEPTH`), with the same 400: a documented
  difference (no Kubernetes object is nested anywhere near that deep).
- YAML (sigs.k8s.io/yaml): converted to JSON values. Timestamps stay strings; excessive aliasing
  (a "billion laughs" document) is a 400.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml

from publishing_testkit.kube_emulator import errors

GO_MAX_DEPTH = 10_000  # encoding/json's maxNestingDepth
PROCESSABLE_DEPTH = 256  # what the emulator's recursive validation handles safely within Python's stack
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_YAML_NODES = 1_000_000  # expanded aliases beyond this: go-yaml's "excessive aliasing"

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped), without recursion."""
    if raw.count(b"[") + raw.count(b"{") <= PROCESSABLE_DEPTH:
        return 0  # cannot be deeper than that: skip the scan
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b"", raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _too_deep(deepest: int) -> errors.ApiError:
    limit = "exceeded max depth" if deepest > GO_MAX_DEPTH else "exceeds the emulator's depth limit"
    return errors.bad_request(
        f"couldn't get version/kind; json parse error: the body is nested {deepest} levels deep: {limit} "
        f"(kube-apiserver: {GO_MAX_DEPTH}, this emulator: {PROCESSABLE_DEPTH})"
    )


def _parse_int(text: str) -> int | float:
    """Go's unstructured decoding: int64 when it fits, else float64, else a 400."""
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts (sys.int_info.str_digits_check_threshold)
        value = None
    if value is not None and INT64_MIN <= value <= INT64_MAX:
        return value
    return _parse_float(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise errors.bad_request(f"json: cannot unmarshal number {text[:40]} into Go value of type float64")
    return value


def _refuse_constant(name: str) -> Any:
    raise errors.bad_request(
        f"json parse error: invalid character {name[0]!r} looking for beginning of value"
    )


def _replace_surrogates(value: Any) -> Any:
    """Lone surrogates (Python keeps them, Go does not) become U+FFFD, in keys and values."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [_replace_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_surrogates(key): _replace_surrogates(item) for key, item in value.items()}
    return value


def decode_json(raw: bytes) -> Any:
    """A request body as kube-apiserver reads it; ApiError(400) for anything it refuses."""
    deepest = nesting_depth(raw)
    if deepest > PROCESSABLE_DEPTH:
        raise _too_deep(deepest)
    text = raw.decode("utf-8", "replace")
    try:
        value = json.loads(
            text or "null",
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
        )
    except errors.ApiError:
        raise
    except (ValueError, RecursionError) as exc:
        raise errors.bad_request(f"invalid JSON in the request body: {exc}") from None
    return _replace_surrogates(value)


class _JsonYamlLoader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it: JSON values only (a timestamp is a string)."""


_JsonYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def decode_yaml(text: str) -> Any:
    """A YAML body as JSON values; ApiError(400) for what cannot be one."""
    try:
        value = yaml.load(text, Loader=_JsonYamlLoader)
    except RecursionError:
        raise errors.bad_request(
            f"error converting YAML to JSON: yaml: exceeded max depth (kube-apiserver: {GO_MAX_DEPTH}; "
            "this emulator stops earlier)"
        ) from None
    except (yaml.YAMLError, ValueError) as exc:
        raise errors.bad_request(f"invalid YAML: {str(exc)[:500]}") from None
    budget = [MAX_YAML_NODES]
    return _replace_surrogates(_as_json(value, budget, 0))


def _as_json(value: Any, budget: list[int], depth: int) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise errors.bad_request("error converting YAML to JSON: yaml: document contains excessive aliasing")
    if depth > PROCESSABLE_DEPTH:
        raise _too_deep(depth)
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            return _parse_float(str(value))
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            shown = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")  # as Go prints them
            raise errors.bad_request(f"error converting YAML to JSON: json: unsupported value: {shown}")
        return value
    if isinstance(value, list):
        return [_as_json(item, budget, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_yaml_key(key): _as_json(item, budget, depth + 1) for key, item in value.items()}
    raise errors.bad_request(
        f"error converting YAML to JSON: unsupported value of type {type(value).__name__}"
    )


def _yaml_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None or isinstance(key, int | float | str):
        return "null" if key is None else str(key)
    raise errors.bad_request(
        f"error converting YAML to JSON: unsupported map key of type {type(key).__name__}"
    )


# ---- typed fields: what decoding into Go structs (TypeMeta, ObjectMeta) refuses with a 400 --------

_META_STRINGS = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion")
_META_INTS = ("generation", "deletionGracePeriodSeconds")
_META_TIMES = ("creationTimestamp", "deletionTimestamp")
_META_STRING_MAPS = ("labels", "annotations")
_META_OBJECT_LISTS = ("ownerReferences", "managedFields")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


_GO_NAMED_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """Go's strconv.Quote (fmt's %q): how kube-apiserver names a field in `unknown field "..."`."""
    out = []
    for c in text:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif c in _GO_NAMED_ESCAPES:
            out.append(_GO_NAMED_ESCAPES[c])
        elif ord(c) < 0x80 and not c.isprintable():
            out.append(f"\\x{ord(c):02x}")
        elif not c.isprintable():
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def go_json_type(value: Any) -> str:
    """The JSON type's name as Go's json.UnmarshalTypeError spells it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def check_patched_fields(kind: str, version: str, patched: Any) -> None:
    """`check_typed_fields` for the result of a patch: kube-apiserver answers 422 with the object."""
    try:
        check_typed_fields(kind, version, patched)
    except errors.ApiError as exc:
        shown = json.dumps(patched, separators=(",", ":"))
        raise errors.ApiError(
            422, "Invalid", f' "" is invalid: patch: Invalid value: {json.dumps(shown)}: {exc.message}', {}
        ) from None


def check_typed_fields(kind: str, version: str, obj: Any) -> None:
    """apiVersion and kind are strings and metadata is an ObjectMeta, or the API server answers 400
    (for a body it cannot even read the kind of, or one it cannot decode into its Go types)."""
    if not isinstance(obj, dict):
        return  # callers refuse non-objects with their own message
    for field in ("apiVersion", "kind"):
        value = obj.get(field)
        if value is not None and not isinstance(value, str):
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {kind}): couldn't get version/kind; "
                f"json parse error: json: cannot unmarshal {go_json_type(value)} into Go struct field "
                f".{field} of type string"
            )
    meta = obj.get("metadata")
    if meta is None:
        return
    refuse = f'{kind} in version "{version}" cannot be handled as a {kind}: json: cannot unmarshal'
    if not isinstance(meta, dict):
        raise errors.bad_request(f"{refuse} {go_json_type(meta)} into Go value of type v1.ObjectMeta")

    def wrong(field: str, value: Any, go_type: str) -> errors.ApiError:
        shown = go_json_type(value)
        if shown == "number" and go_type == "int64":
            shown = f"number {value}"
        return errors.bad_request(
            f"{refuse} {shown} into Go struct field ObjectMeta.{field} of type {go_type}"
        )

    for field in _META_STRINGS:
        if meta.get(field) is not None and not isinstance(meta[field], str):
            raise wrong(field, meta[field], "string")
    for field in _META_INTS:
        value = meta.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise wrong(field, value, "int64")
    for field in _META_TIMES:
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise wrong(field, value, "v1.Time")
        if value and not _RFC3339.match(value):
            raise errors.bad_request(
                f'{refuse[: -len(": json: cannot unmarshal")]}: parsing time "{value[:64]}"'
            )
    for field in _META_STRING_MAPS:
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise wrong(field, value, "map[string]string")
        for item in value.values():
            if item is not None and not isinstance(item, str):
                raise wrong(field, item, "string")
    finalizers = meta.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list):
            raise wrong("finalizers", finalizers, "[]string")
        for item in finalizers:
            if item is not None and not isinstance(item, str):
                raise wrong("finalizers", item, "string")
    for field in _META_OBJECT_LISTS:
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, list):
            raise wrong(field, value, "[]v1.OwnerReference")
        for item in value:
            if item is not None and not isinstance(item, dict):
                raise wrong(field, item, "v1.OwnerReference")
