"""Decoding the few protobuf bodies kubectl sends for imperative commands.

`kubectl create namespace|secret|configmap|serviceaccount` encode the object as Kubernetes protobuf
(`application/vnd.kubernetes.protobuf`: the magic `k8s\\0`, then a `runtime.Unknown` envelope
holding the typed message). These kinds are small and stable, so their messages are decoded here
into the JSON shape; any other protobuf body stays HTTP 415, as before.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

MAGIC = b"k8s\x00"

Fields = list[tuple[int, int | bytes]]


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            yield number, data[pos : pos + length]
            pos += length
        elif wire == 1:
            yield number, int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            yield number, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string")
    return value.decode()


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError("expected bytes")
    return value


def _entry(value: int | bytes) -> tuple[str, bytes]:
    key, item = "", b""
    for number, field in _fields(_bytes(value)):
        if number == 1:
            key = _text(field)
        elif number == 2:
            item = _bytes(field)
    return key, item


def _object_meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for number, value in _fields(data):
        if number in names and _text(value):  # gogo-protobuf writes empty strings too
            meta[names[number]] = _text(value)
        elif number in (11, 12):
            key, item = _entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
    return meta


def _namespace(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields:
        if number == 1:
            obj["metadata"] = _object_meta(_bytes(value))
    return obj


def _secret(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields:
        if number == 1:
            obj["metadata"] = _object_meta(_bytes(value))
        elif number == 2:
            key, item = _entry(value)
            obj.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3 and _text(value):
            obj["type"] = _text(value)
        elif number == 4:
            key, item = _entry(value)
            obj.setdefault("stringData", {})[key] = item.decode()
        elif number == 5:
            obj["immutable"] = bool(value)
    return obj


def _configmap(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields:
        if number == 1:
            obj["metadata"] = _object_meta(_bytes(value))
        elif number == 2:
            key, item = _entry(value)
            obj.setdefault("data", {})[key] = item.decode()
        elif number == 3:
            key, item = _entry(value)
            obj.setdefault("binaryData", {})[key] = base64.b64encode(item).decode()
        elif number == 4:
            obj["immutable"] = bool(value)
    return obj


def _serviceaccount(fields: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in fields:
        if number == 1:
            obj["metadata"] = _object_meta(_bytes(value))
        elif number == 4:
            obj["automountServiceAccountToken"] = bool(value)
    return obj


DECODERS: dict[tuple[str, str], Callable[[Fields], dict[str, Any]]] = {
    ("v1", "Namespace"): _namespace,
    ("v1", "Secret"): _secret,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "ServiceAccount"): _serviceaccount,
}


def decode(body: bytes) -> dict[str, Any] | None:
    """The JSON form of a supported protobuf object, or None for any other kind."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[len(MAGIC) :]):
        if number == 1:
            for type_number, type_value in _fields(_bytes(value)):
                if type_number == 1:
                    api_version = _text(type_value)
                elif type_number == 2:
                    kind = _text(type_value)
        elif number == 2:
            raw = _bytes(value)
    decoder = DECODERS.get((api_version, kind))
    if decoder is None:
        return None
    return {"apiVersion": api_version, "kind": kind, **decoder(list(_fields(raw)))}
