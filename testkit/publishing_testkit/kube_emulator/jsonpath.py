"""The subset of Kubernetes JSONPath that CRD printer columns use.

Supports `.a.b`, `['a.b']`, `[0]`, `[*]` and filters `[?(@.field=="value")]` / `!=`, which covers
`.status.conditions[?(@.type=="Succeeded")].status`. Evaluation returns every match in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Step = Callable[[list[Any]], list[Any]]

_TOKEN = re.compile(
    r"""
    \.(?P<field>[A-Za-z0-9_-]+)
    | \[\s*'(?P<quoted>[^']*)'\s*\]
    | \[\s*(?P<index>-?\d+)\s*\]
    | \[\s*(?P<star>\*)\s*\]
    | \[\s*\?\(\s*@\.(?P<fpath>[A-Za-z0-9_.-]+)\s*(?P<fop>==|!=)\s*
        (?P<fvalue>"[^"]*"|'[^']*'|[^)\s]+)\s*\)\s*\]
    """,
    re.VERBOSE,
)


class JsonPathError(ValueError):
    pass


def _get_field(name: str) -> Step:
    return lambda values: [v[name] for v in values if isinstance(v, dict) and name in v]


def _get_index(index: int) -> Step:
    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if isinstance(value, list) and -len(value) <= index < len(value):
                out.append(value[index])
        return out

    return step


def _get_all(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(value)
        elif isinstance(value, dict):
            out.extend(value.values())
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _get_filtered(path: str, op: str, literal: str) -> Step:
    expected = literal[1:-1] if literal[:1] in ("'", '"') else literal

    def read(item: Any) -> Any:
        for part in path.split("."):
            if not isinstance(item, dict) or part not in item:
                return None
            item = item[part]
        return item

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            items = value if isinstance(value, list) else []
            for item in items:
                actual = read(item)
                matched = actual is not None and _as_text(actual) == expected
                if matched == (op == "=="):
                    out.append(item)
        return out

    return step


def compile_path(expression: str) -> Callable[[Any], list[Any]]:
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = text.removeprefix("$")
    steps: list[Step] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise JsonPathError(f"unsupported JSONPath {expression!r} at {text[position:]!r}")
        if match["field"] is not None:
            steps.append(_get_field(match["field"]))
        elif match["quoted"] is not None:
            steps.append(_get_field(match["quoted"]))
        elif match["index"] is not None:
            steps.append(_get_index(int(match["index"])))
        elif match["star"] is not None:
            steps.append(_get_all)
        else:
            steps.append(_get_filtered(match["fpath"], match["fop"], match["fvalue"]))
        position = match.end()

    def evaluate(obj: Any) -> list[Any]:
        values = [obj]
        for step in steps:
            values = step(values)
        return values

    return evaluate
