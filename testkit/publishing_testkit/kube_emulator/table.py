"""The `meta.k8s.io/v1` Table (so `kubectl get` shows printer columns) and PartialObjectMetadata forms."""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Mapping
from typing import Any

from publishing_testkit.kube_emulator.errors import JsonObject
from publishing_testkit.kube_emulator.jsonpath import JsonPathError, compile_path
from publishing_testkit.kube_emulator.resources import PrinterColumn, ResourceType

# Every row of every Table reads the same few printer-column paths: compile each one once.
_compiled_path = functools.lru_cache(maxsize=256)(compile_path)


def wants_as(accept: str, kind: str) -> bool:
    """True when the first acceptable media type asks for `as=kind` (kubectl lists it before plain JSON)."""
    first = accept.split(",")[0]
    return f"as={kind}" in first.replace(" ", "")


def wants_table(accept: str) -> bool:
    return wants_as(accept, "Table")


def human_duration(seconds: float) -> str:
    """The API server's `duration.HumanDuration`, as printed in AGE columns."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y{rest}d" if rest else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age_of(timestamp: Any, now: datetime.datetime | None = None) -> str | None:
    if not isinstance(timestamp, str) or not timestamp:
        return None
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration((now - then).total_seconds())


def _cell(column: PrinterColumn, obj: Mapping[str, Any]) -> Any:
    if column.compute is not None:
        return column.compute(obj)
    try:
        values = _compiled_path(column.json_path)(obj)
    except JsonPathError:
        return None
    if not values:
        return None
    value = values[0] if len(values) == 1 else ",".join(_scalar(v) for v in values)
    if column.type == "date":
        return age_of(value) or value
    if column.type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if column.type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if column.type == "boolean" and isinstance(value, bool):
        return value
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else str(value)


# ObjectMeta.name's documentation, which kube-apiserver puts in the Name column's description.
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)


def column_definitions(rtype: ResourceType) -> list[JsonObject]:
    name = {
        "name": "Name",
        "type": "string",
        "format": "name",
        "priority": 0,
        "description": NAME_DESCRIPTION,
    }
    return [name] + [
        {
            "name": column.name,
            "type": column.type,
            "format": column.format,
            # kube-apiserver's words for a printer column without a description
            "description": column.description
            or f"Custom resource definition column (in JSONPath format): {column.json_path}",
            "priority": column.priority,
        }
        for column in rtype.columns
    ]


def partial_object_metadata(obj: JsonObject) -> JsonObject:
    """An object as `meta.k8s.io/v1` PartialObjectMetadata: its metadata only."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def _row_object(obj: JsonObject, include: str) -> JsonObject | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return partial_object_metadata(obj)


def row(rtype: ResourceType, obj: JsonObject, include: str = "Metadata") -> JsonObject:
    cells = [obj.get("metadata", {}).get("name", "")] + [_cell(column, obj) for column in rtype.columns]
    result: JsonObject = {"cells": cells}
    row_object = _row_object(obj, include)
    if row_object is not None:
        result["object"] = row_object
    return result


def table(
    rtype: ResourceType,
    objs: list[JsonObject],
    resource_version: str,
    include: str = "Metadata",
    with_columns: bool = True,
) -> JsonObject:
    result: JsonObject = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": column_definitions(rtype) if with_columns else None,
        "rows": [row(rtype, obj, include) for obj in objs],
    }
    return result
