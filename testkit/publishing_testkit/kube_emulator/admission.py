"""The API server's admission of a custom resource, for the Kubernetes emulator.

What kube-apiserver does with a CRD's structural schema, in its order: prune unknown fields, apply
`default:`s, validate the schema (types, enums, patterns, lengths, bounds, formats, required, list
types), then evaluate the `x-kubernetes-validations` CEL rules with cel-python. Transition rules
(those that mention `oldSelf`) run only when the old object has a value at the same place. Errors
carry the paths, types and messages a real server produces, and `AdmissionError.to_status()` renders
the `422 Invalid` Status body kubectl prints.

Not modelled: CEL cost budgets, validation ratcheting, `optionalOldSelf` (such rules run only on
update), and metadata validation (the emulator owns ObjectMeta).
"""

from __future__ import annotations

import base64
import copy
import functools
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import celpy
import re2  # type: ignore[import-untyped]  # Kubernetes matches patterns with RE2, so do we
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from pydantic import BaseModel

Json = Any
Schema = Mapping[str, Any]
_TOP_LEVEL = ("apiVersion", "kind", "metadata")
# Errors that break the CEL cost assumptions: kube-apiserver then skips the rules (hasBlockingErr).
_BLOCKING = (
    "FieldValueNotSupported",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueTypeInvalid",
)
_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)

# apimachinery's field.ErrorType strings, keyed by the cause type in a Status.
_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
# Types whose message never shows the offending value (field.Error.ErrorBody).
_VALUELESS = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}
_NO_VALUE = object()


class FieldError(BaseModel):
    """One invalid field, as a `details.causes[]` entry of a Status."""

    type: str  # the cause type: FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, ...
    field: str  # e.g. "spec.source"
    message: str  # the body without the field, e.g. 'Invalid value: exactly one of ...'

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class AdmissionError(Exception):
    """The object is invalid; `errors` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(_aggregate(errors))

    def to_status(self, kind: str, name: str, group: str) -> dict[str, Any]:
        """The `422 Invalid` Status body a real API server answers with."""
        qualified = f"{kind}.{group}" if group else kind
        message = f'{qualified} "{name}" is invalid'
        if self.errors:
            message += f": {_aggregate(self.errors)}"
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "Invalid",
            "details": {
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [{"reason": e.type, "message": e.message, "field": e.field} for e in self.errors],
            },
            "code": 422,
        }


def _aggregate(errors: list[FieldError]) -> str:
    """utilerrors.Aggregate's text: one message, or "[a, b]", duplicates removed."""
    texts = list(dict.fromkeys(str(e) for e in errors))
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def _go_value(value: Any) -> str:
    """The offending value the way Go's fmt prints it in field errors (%q strings, %v scalars)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _field_error(type_: str, path: str, detail: str = "", value: Any = _NO_VALUE) -> FieldError:
    body = _TYPE_TEXT.get(type_, type_)
    if type_ not in _VALUELESS and value is not _NO_VALUE:
        body += f": {_go_value(value)}"
    if detail:
        body += f": {detail}"
    return FieldError(type=type_, field=path, message=body)


# ---------------------------------------------------------------------------------------------------
# Paths: "spec.conditions[0].type", as apimachinery's field.Path prints them
# ---------------------------------------------------------------------------------------------------


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _index(path: str, index: int | str) -> str:
    return f"{path}[{index}]"


_FIELD_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\]|\[\s*(\d+)\s*\]")


def _join_field_path(path: str, field_path: str) -> str:
    """Append a rule's `fieldPath` (".submit.ios", "['x']", "[0]") to the rule's own path."""
    out, pos = path, 0
    while pos < len(field_path):
        m = _FIELD_PATH_STEP.match(field_path, pos)
        if m is None:  # not understood: show it verbatim, like a best effort
            return out + field_path[pos:]
        if m.group(1) is not None:
            out = _child(out, m.group(1))
        elif m.group(2) is not None:
            out = _child(out, m.group(2))
        else:
            out = _index(out, m.group(3))
        pos = m.end()
    return out


# ---------------------------------------------------------------------------------------------------
# CEL: cel-python plus the parts of the Kubernetes CEL libraries rules commonly need
# ---------------------------------------------------------------------------------------------------


def _split(text: celtypes.StringType, sep: celtypes.StringType, limit: Any = None) -> celtypes.ListType:
    parts = str(text).split(str(sep)) if limit is None else str(text).split(str(sep), int(limit) - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(items: celtypes.ListType, sep: Any = "") -> celtypes.StringType:
    return celtypes.StringType(str(sep).join(str(i) for i in items))


def _index_of(target: Any, needle: Any, start: Any = 0) -> celtypes.IntType:
    if isinstance(target, celtypes.StringType):
        return celtypes.IntType(str(target).find(str(needle), int(start)))
    items = list(target)
    return celtypes.IntType(items.index(needle) if needle in items else -1)


def _last_index_of(target: Any, needle: Any) -> celtypes.IntType:
    if isinstance(target, celtypes.StringType):
        return celtypes.IntType(str(target).rfind(str(needle)))
    items = list(target)
    return celtypes.IntType(len(items) - 1 - items[::-1].index(needle) if needle in items else -1)


def _find(text: celtypes.StringType, pattern: celtypes.StringType) -> celtypes.StringType:
    m = re2.search(str(pattern), str(text))
    return celtypes.StringType(m.group(0) if m else "")


def _find_all(text: celtypes.StringType, pattern: celtypes.StringType, limit: Any = -1) -> celtypes.ListType:
    found = [m.group(0) for m in re2.finditer(str(pattern), str(text))]
    if int(limit) >= 0:
        found = found[: int(limit)]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


def _is_url(text: celtypes.StringType) -> celtypes.BoolType:
    return celtypes.BoolType(
        re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:(//)?[^\s]*$|^/[^\s]*$", str(text)) is not None
    )


def _is_sorted(items: Iterable[Any]) -> celtypes.BoolType:
    return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(items)))


def _sum(items: Iterable[Any]) -> Any:
    values = list(items)
    if not values:
        return celtypes.IntType(0)
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def _min(items: Iterable[Any]) -> Any:
    return min(items)


def _max(items: Iterable[Any]) -> Any:
    return max(items)


_GO_UNITS = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_GO_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]+)")


def go_parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds: what CEL's duration() calls in kube-apiserver.

    Unlike cel-python (microseconds, +-10000 years), Go keeps nanoseconds, drops what is below one,
    and refuses anything beyond int64 nanoseconds (about 292 years): ValueError then."""
    invalid = ValueError(f"type conversion error from 'string' to 'google.protobuf.Duration': {text[:40]!r}")
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        match = _GO_DURATION_PART.match(rest)
        if match is None or not (match.group(1) or match.group(2)) or match.group(3) not in _GO_UNITS:
            raise invalid
        whole, fraction, unit = match.group(1) or "0", match.group(2) or "", _GO_UNITS[match.group(3)]
        if int(whole) > 2**63 // unit:
            raise invalid
        value = int(whole) * unit
        digits, scale = 0, 1.0
        for char in fraction:  # Go's leadingFraction: stop reading digits before they overflow
            if digits > (2**63 - 1) // 10 or digits * 10 + int(char) > 2**63:
                break
            digits, scale = digits * 10 + int(char), scale * 10
        value += int(float(digits) * (float(unit) / scale))
        total += value
        if total > 2**63 - (0 if negative else 1):
            raise invalid
        rest = rest[match.end() :]
    return -total if negative else total


def _duration(value: Any) -> celtypes.DurationType:
    """CEL's duration() with Go's range and precision. Sub-microsecond parts round away from zero
    (cel-python holds microseconds), so comparisons with zero agree with Go's."""
    if not isinstance(value, str):
        return celtypes.DurationType(value)
    nanoseconds = go_parse_duration(value)
    micro = -((-abs(nanoseconds)) // 1000)  # ceiling of |ns| / 1000
    return celtypes.DurationType(timedelta(microseconds=micro if nanoseconds >= 0 else -micro))


KUBERNETES_CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "duration": _duration,
    # strings extension library (cel-go ext.Strings), as enabled in kube-apiserver
    "split": _split,
    "join": _join,
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "replace": lambda s, old, new, n=-1: celtypes.StringType(str(s).replace(str(old), str(new), int(n))),
    "substring": lambda s, a, b=None: celtypes.StringType(str(s)[int(a) : None if b is None else int(b)]),
    "charAt": lambda s, i: celtypes.StringType(str(s)[int(i) : int(i) + 1]),
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    # Kubernetes regex and URL libraries
    "find": _find,
    "findAll": _find_all,
    "isURL": _is_url,
    # Kubernetes lists library
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
}


@dataclass(frozen=True)
class _Rule:
    """One compiled `x-kubernetes-validations` entry."""

    source: str
    program: celpy.Runner
    message: str | None
    message_program: celpy.Runner | None
    reason: str
    field_path: str | None
    transition: bool


_OLD_SELF = re.compile(r"\boldSelf\b")


def _compile_rules(schema: Schema, env: celpy.Environment) -> list[_Rule]:
    rules = []
    for entry in schema.get("x-kubernetes-validations", ()):
        text = entry["rule"]
        try:
            program = env.program(env.compile(text), functions=KUBERNETES_CEL_FUNCTIONS)
            message_program = None
            if entry.get("messageExpression"):
                message_program = env.program(
                    env.compile(entry["messageExpression"]), functions=KUBERNETES_CEL_FUNCTIONS
                )
        except CELParseError as exc:
            raise ValueError(f"CEL rule {text!r} does not compile: {exc}") from exc
        rules.append(
            _Rule(
                source=text,
                program=program,
                message=entry.get("message"),
                message_program=message_program,
                reason=entry.get("reason", "FieldValueInvalid"),
                field_path=entry.get("fieldPath"),
                transition=_OLD_SELF.search(text) is not None,
            )
        )
    return rules


def to_cel(value: Json, schema: Schema) -> Any:
    """A JSON value as the CEL value Kubernetes binds to `self` for that schema."""
    if value is None:
        return None
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return celtypes.IntType(value) if isinstance(value, int) else celtypes.StringType(value)
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None and not isinstance(schema.get("additionalProperties"), Mapping):
            return json_to_cel(value)
        out = {}
        for key, item in value.items():
            sub = props.get(key) if props is not None else schema["additionalProperties"]
            out[celtypes.StringType(key)] = to_cel(item, sub) if sub is not None else json_to_cel(item)
        return celtypes.MapType(out)
    if isinstance(value, list):
        items = schema.get("items", {})
        return celtypes.ListType([to_cel(item, items) for item in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if kind == "number" and isinstance(value, int | float):
        return celtypes.DoubleType(value)
    if kind == "integer" and isinstance(value, int | float):
        return celtypes.IntType(int(value))
    if isinstance(value, str):
        fmt = schema.get("format")
        try:
            if fmt == "date-time":
                return celtypes.TimestampType(value)
            if fmt == "duration":
                return celtypes.DurationType(value)
        except ValueError:
            pass
        return celtypes.StringType(value)
    return json_to_cel(value)


# ---------------------------------------------------------------------------------------------------
# Formats and type checks (the subset of kube-openapi's strfmt a CRD uses)
# ---------------------------------------------------------------------------------------------------

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def _valid_format(fmt: str, value: str) -> bool:
    if fmt == "date-time":
        if not _DATE_TIME.match(value):
            return False
        try:
            datetime.fromisoformat(value.replace("z", "Z").replace(" ", "T"))
        except ValueError:
            return False
        return True
    if fmt == "date":
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            return False
        return True
    if fmt == "uuid":
        return _UUID.match(value) is not None
    if fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            return False
        return True
    return True  # int32, int64, float, double, password and unknown formats are not checked


def _json_type(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_MAX_JSON_INTEGER = 2**53 - 1  # go-openapi's swag.IsFloat64AJSONInteger bound


def _json_integer(value: float) -> bool:
    return value.is_integer() and abs(value) <= _MAX_JSON_INTEGER


def _has_type(value: Json, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    kind = schema.get("type")
    if kind is None:
        return True
    actual = _json_type(value)
    if kind == "integer":
        return actual == "integer" or (actual == "number" and _json_integer(float(value)))
    if kind == "number":
        return actual in ("integer", "number")
    return bool(actual == kind)


# ---------------------------------------------------------------------------------------------------
# The validator
# ---------------------------------------------------------------------------------------------------


class CRDValidator:
    """Admission for one served version of one CRD."""

    def __init__(self, schema: Schema, *, status_subresource: bool = False) -> None:
        self.schema = copy.deepcopy(dict(schema))  # owned: compiled rules are keyed by subschema identity
        self.status_subresource = status_subresource
        self._env = celpy.Environment()
        self._rules: dict[int, list[_Rule]] = {}
        self._with_rules: set[int] = set()  # subschemas with a rule at or below them
        self._compile(self.schema)

    @classmethod
    def from_crd(cls, crd: Mapping[str, Any], version: str) -> CRDValidator:
        """The validator for `version` of an `apiextensions.k8s.io/v1` CustomResourceDefinition."""
        for served in crd["spec"]["versions"]:
            if served["name"] == version:
                schema = served.get("schema", {}).get("openAPIV3Schema")
                if schema is None:
                    raise ValueError(f"version {version!r} of {crd['metadata']['name']} has no schema")
                subresources = served.get("subresources") or crd["spec"].get("subresources") or {}
                return cls(schema, status_subresource="status" in subresources)
        raise ValueError(f"{crd['metadata']['name']} does not serve version {version!r}")

    def _compile(self, schema: Schema) -> bool:
        """Compile the rules at and below `schema`; True if there are any."""
        found = False
        if "x-kubernetes-validations" in schema:
            self._rules[id(schema)] = _compile_rules(schema, self._env)
            found = bool(self._rules[id(schema)])
        for sub in _subschemas(schema):
            found = self._compile(sub) or found
        if found:
            self._with_rules.add(id(schema))
        return found

    # -- the pipeline ---------------------------------------------------------------------------------

    def admit(
        self, new: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        """Prune, default and validate `new` (an update when `old` is given); return the admitted object.

        `subresource="status"` changes nothing here: the whole object is validated, as kube-apiserver
        does. Copying spec/status between old and new for subresources is `reset_fields`' job.
        """
        admitted = self.prune(_go_numbers(copy.deepcopy(new)))
        self.default(admitted)
        previous = None
        if old is not None and id(self.schema) in self._with_rules:  # only rules look at the old object
            previous = self.prune(copy.deepcopy(old))
            self.default(previous)
        errors = self.validate(admitted, previous)
        if errors:
            raise AdmissionError(errors)
        return admitted

    def reset_fields(
        self, new: dict[str, Any], old: dict[str, Any] | None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        """The status-subresource semantics of the CRD registry strategies (without metadata).

        With a status subresource, a create drops `status`, a main-resource update keeps the old
        `status`, and a `/status` update keeps everything but `status` from the old object.
        """
        if not self.status_subresource:
            return new
        out = copy.deepcopy(new)
        if subresource == "status" and old is not None:
            for key in list(out):
                if key not in ("status", "metadata"):
                    del out[key]
            for key, value in old.items():
                if key not in ("status", "metadata"):
                    out[key] = copy.deepcopy(value)
        elif subresource is None:
            out.pop("status", None)
            if old is not None and "status" in old:
                out["status"] = copy.deepcopy(old["status"])
        return out

    # -- pruning --------------------------------------------------------------------------------------

    def prune(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Drop every field the schema does not declare (in place; returns obj)."""
        _prune(obj, self.schema, root=True)
        return obj

    # -- defaulting -----------------------------------------------------------------------------------

    def default(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Apply `default:`s where the parent object exists (in place; returns obj)."""
        _default(obj, self.schema, root=True)
        return obj

    # -- validation -----------------------------------------------------------------------------------

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
        """Schema errors, then CEL errors (skipped, as the server does, after type errors)."""
        errors: list[FieldError] = []
        _validate(obj, self.schema, "", errors, root=True)
        if any(e.type in _BLOCKING for e in errors):
            errors.append(_field_error("FieldValueInvalid", "<nil>", _NOT_CHECKED, None))  # Go's nil: null
            return errors
        self._run_rules(obj, old if old is not None else _NO_VALUE, self.schema, "", errors, root=True)
        return errors

    def _run_rules(
        self,
        value: Json,
        old: Any,
        schema: Schema,
        path: str,
        errors: list[FieldError],
        *,
        root: bool = False,
    ) -> None:
        if value is None or id(schema) not in self._with_rules:
            return  # no rule here or below: nothing to walk
        rules = [
            rule for rule in self._rules.get(id(schema), ()) if not (rule.transition and old is _NO_VALUE)
        ]
        if rules:
            # Every rule here sees the same `self` (and `oldSelf`): convert them to CEL once, not per rule.
            view = _root_view if root else _same
            this = to_cel(view(value), schema)
            previous = to_cel(view(old), schema) if any(rule.transition for rule in rules) else None
            for rule in rules:
                activation = {"self": this, "oldSelf": previous} if rule.transition else {"self": this}
                error = self._evaluate(rule, activation, schema, path, value)
                if error is not None:
                    errors.append(error)
        if isinstance(value, dict):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if root and key in _TOP_LEVEL:
                    continue
                sub = props.get(key, extra if isinstance(extra, Mapping) else None)
                if sub is None:
                    continue
                old_item = old.get(key, _NO_VALUE) if isinstance(old, dict) else _NO_VALUE
                self._run_rules(item, old_item, sub, _child(path, key), errors)
        elif isinstance(value, list):
            items = schema.get("items")
            if not isinstance(items, Mapping):
                return
            for i, item in enumerate(value):
                old_item = _correlate(item, old, schema)
                self._run_rules(item, old_item, items, _index(path, i), errors)

    def _evaluate(
        self, rule: _Rule, activation: dict[str, Any], schema: Schema, path: str, value: Json
    ) -> FieldError | None:
        target = _join_field_path(path, rule.field_path) if rule.field_path else path
        shown_type = schema.get("type", "object")
        result: Any
        try:
            result = rule.program.evaluate(activation)
        except Exception as exc:  # a rule that errors at runtime rejects the object, as on a server
            result = exc
        # kube-apiserver: '<error> evaluating rule: <the rule's message, or the rule>', with the
        # type's name as the value. The error text is cel-python's, not cel-go's (see README).
        about = (rule.message or rule.source).strip()
        if isinstance(result, Exception):
            detail = f"{_cel_error_text(result)} evaluating rule: {about}"
            return _field_error("FieldValueInvalid", target, detail, shown_type)
        if not isinstance(result, celtypes.BoolType | bool):
            detail = f"no matching overload (result is not a bool) evaluating rule: {about}"
            return _field_error("FieldValueInvalid", target, detail, shown_type)
        if result:
            return None
        message = rule.message or f"failed rule: {rule.source}"
        if rule.message_program is not None:
            try:
                evaluated = rule.message_program.evaluate(activation)
                if isinstance(evaluated, str) and evaluated.strip():
                    message = str(evaluated)
            except Exception:  # the server falls back to message when messageExpression fails
                pass
        # kube-apiserver (apiextensions-apiserver cel/validation.go) shows a scalar's value and
        # omits an object's or array's: 'Invalid value: "..": msg', 'Invalid value: msg'.
        shown: Any = _NO_VALUE if shown_type in ("object", "array") else value
        return _field_error(rule.reason, target, message, shown)


def _go_numbers(value: Json) -> Json:
    """Integral floats that a JSON integer can hold exactly become ints, as kube-openapi reads them
    (2.0 -> 2, 1e3 -> 1000); beyond 2**53 a float stays a float, which `type: integer` refuses."""
    if isinstance(value, float) and _json_integer(value):
        return int(value)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _go_numbers(item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = _go_numbers(item)
    return value


def _cel_error_text(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    return str(args[0]) if args else type(exc).__name__


def _same(value: Json) -> Json:
    return value


def _root_view(value: Json) -> Json:
    """At the root, CEL sees apiVersion, kind and only metadata.name/generateName."""
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        meta = {k: v for k, v in value["metadata"].items() if k in ("name", "generateName")}
        return {**value, "metadata": meta}
    return value


def _correlate(item: Json, old_list: Any, schema: Schema) -> Any:
    """The old list item that a transition rule compares with: by key for map lists, by value for sets."""
    if not isinstance(old_list, list):
        return _NO_VALUE
    list_type = schema.get("x-kubernetes-list-type", "atomic")
    if list_type == "map" and isinstance(item, dict):
        keys = schema.get("x-kubernetes-list-map-keys", [])
        for candidate in old_list:
            if isinstance(candidate, dict) and all(candidate.get(k) == item.get(k) for k in keys):
                return candidate
    elif list_type == "set" and item in old_list:
        return item
    return _NO_VALUE


def _subschemas(schema: Schema) -> Iterable[Schema]:
    yield from (schema.get("properties") or {}).values()
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), Mapping):
            yield schema[key]
    for key in ("allOf", "anyOf", "oneOf"):
        yield from schema.get(key, ())


def _prune(value: Json, schema: Schema, *, root: bool = False) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for key in list(value):
            if root and key in _TOP_LEVEL:
                continue  # metadata is ObjectMeta, handled by the emulator
            if embedded and key in _TOP_LEVEL:
                continue
            if props is not None and key in props:
                _prune(value[key], props[key])
            elif isinstance(extra, Mapping):
                _prune(value[key], extra)
            elif not keep_unknown and extra is not True:
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _prune(item, schema["items"])


def _default(value: Json, schema: Schema, *, root: bool = False) -> None:
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if root and key in _TOP_LEVEL:
                continue
            present = key in value
            if present and value[key] is None and not sub.get("nullable"):
                # a null for a non-nullable field is dropped, then defaulted like an absent one
                del value[key]
                present = False
            if not present and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
                present = True
            if present:
                _default(value[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key in list(value):
                if not (schema.get("properties") and key in schema["properties"]):
                    _default(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _default(item, schema["items"])


def _validate(
    value: Json, schema: Schema, path: str, errors: list[FieldError], *, root: bool = False
) -> None:
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            detail = f'{path} in body must be of type {schema["type"]}: "null"'
            errors.append(_field_error("FieldValueTypeInvalid", path, detail, "null"))
        return
    if not _has_type(value, schema):
        expected = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema["type"]
        detail = f'{path} in body must be of type {expected}: "{_json_type(value)}"'
        errors.append(_field_error("FieldValueTypeInvalid", path, detail, _json_type(value)))
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_go_value(v) for v in schema["enum"])
        errors.append(_field_error("FieldValueNotSupported", path, f"supported values: {supported}", value))
    if isinstance(value, str):
        _validate_string(value, schema, path, errors)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(value, schema, path, errors)
    elif isinstance(value, list):
        _validate_list(value, schema, path, errors)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, errors, root=root)
    _validate_combinators(value, schema, path, errors)


@functools.lru_cache(maxsize=65536)
def _matches(pattern: str, value: str) -> bool:
    """A schema pattern against a string, remembered: every write re-validates the whole object,
    and re2's Python wrapper was a quarter of the emulator's CPU (the same names, keys and
    reasons, validated again on every status write of a benchmark)."""
    return re2.search(pattern, value) is not None


def _validate_string(value: str, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        limit = schema["maxLength"]
        unit = "byte" if limit == 1 else "bytes"
        errors.append(_field_error("FieldValueTooLong", path, f"may not be more than {limit} {unit}", value))
    if "minLength" in schema and len(value) < schema["minLength"]:
        detail = f"{path} in body should be at least {schema['minLength']} chars long"
        errors.append(_field_error("FieldValueInvalid", path, detail, value))
    if "pattern" in schema and not _matches(schema["pattern"], value):
        detail = f"{path} in body should match '{schema['pattern']}'"
        errors.append(_field_error("FieldValueInvalid", path, detail, value))
    if "format" in schema and not _valid_format(schema["format"], value):
        detail = f"{path} in body must be of type {schema['format']}: {_go_value(value)}"
        errors.append(_field_error("FieldValueTypeInvalid", path, detail, value))


def _validate_number(value: float, schema: Schema, path: str, errors: list[FieldError]) -> None:
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    if minimum is not None:
        if schema.get("exclusiveMinimum") and value <= minimum:
            detail = f"{path} in body should be greater than {_go_value(minimum)}"
            errors.append(_field_error("FieldValueInvalid", path, detail, value))
        elif value < minimum:
            detail = f"{path} in body should be greater than or equal to {_go_value(minimum)}"
            errors.append(_field_error("FieldValueInvalid", path, detail, value))
    if maximum is not None:
        if schema.get("exclusiveMaximum") and value >= maximum:
            detail = f"{path} in body should be less than {_go_value(maximum)}"
            errors.append(_field_error("FieldValueInvalid", path, detail, value))
        elif value > maximum:
            detail = f"{path} in body should be less than or equal to {_go_value(maximum)}"
            errors.append(_field_error("FieldValueInvalid", path, detail, value))
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        detail = f"{path} in body should be a multiple of {_go_value(multiple)}"
        errors.append(_field_error("FieldValueInvalid", path, detail, value))


def _validate_list(value: list[Json], schema: Schema, path: str, errors: list[FieldError]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        detail = f"must have at most {schema['maxItems']} items"
        errors.append(_field_error("FieldValueTooMany", path, detail, len(value)))
    if "minItems" in schema and len(value) < schema["minItems"]:
        detail = f"{path} in body should have at least {schema['minItems']} items"
        errors.append(_field_error("FieldValueInvalid", path, detail, value))
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            _validate(item, items, _index(path, i), errors)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set" or schema.get("uniqueItems"):
        seen: list[Json] = []
        for i, item in enumerate(value):
            if item in seen:
                errors.append(_field_error("FieldValueDuplicate", _index(path, i), "", item))
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen_keys: list[tuple[Json, ...]] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = tuple(item.get(k) for k in keys)
            if key in seen_keys:
                shown = {k: item.get(k) for k in keys}
                errors.append(_field_error("FieldValueDuplicate", _index(path, i), "", shown))
            seen_keys.append(key)


def _validate_object(
    value: dict[str, Json], schema: Schema, path: str, errors: list[FieldError], *, root: bool
) -> None:
    for key in schema.get("required", ()):
        if key not in value:
            errors.append(_field_error("FieldValueRequired", _child(path, key)))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        detail = f"must have at most {schema['maxProperties']} items"
        errors.append(_field_error("FieldValueTooMany", path, detail, len(value)))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        detail = f"{path} in body should have at least {schema['minProperties']} properties"
        errors.append(_field_error("FieldValueInvalid", path, detail, len(value)))
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if root and key in _TOP_LEVEL:
            continue
        if key in props:
            _validate(item, props[key], _child(path, key), errors)
        elif isinstance(extra, Mapping):
            _validate(item, extra, _child(path, key), errors)


def _validate_combinators(value: Json, schema: Schema, path: str, errors: list[FieldError]) -> None:
    def fails(sub: Schema) -> bool:
        found: list[FieldError] = []
        _validate(value, {"type": schema.get("type"), **sub} if "type" not in sub else sub, path, found)
        return bool(found)

    for sub in schema.get("allOf", ()):
        nested: list[FieldError] = []
        _validate(value, sub, path, nested)
        errors.extend(nested)
    if "anyOf" in schema and all(fails(sub) for sub in schema["anyOf"]):
        errors.append(_field_error("FieldValueInvalid", path, f"{path} in body must match anyOf", value))
    if "oneOf" in schema and sum(not fails(sub) for sub in schema["oneOf"]) != 1:
        errors.append(
            _field_error(
                "FieldValueInvalid",
                path,
                f"{path} in body must validate one and only one schema (oneOf)",
                value,
            )
        )
    if isinstance(schema.get("not"), Mapping) and not fails(schema["not"]):
        errors.append(
            _field_error(
                "FieldValueInvalid", path, f"{path} in body must not validate the schema (not)", value
            )
        )
