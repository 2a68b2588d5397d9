"""Watch streams with the API server's resourceVersion semantics.

- no resourceVersion (or "0"): synthetic ADDED events for the current objects, then live changes;
- resourceVersion=N: only events newer than N; if the event log no longer reaches N, one ERROR
  event with a 410 Expired Status (what kopf and client-go expect to restart from a fresh list);
- sendInitialEvents=true: the current objects, then a BOOKMARK annotated
  `k8s.io/initial-events-end`, then live changes;
- allowWatchBookmarks=true: periodic BOOKMARK events carrying the latest resourceVersion;
- label/field selectors: an object that starts or stops matching arrives as ADDED or DELETED;
- timeoutSeconds: the server ends the stream, as a real one does;
- served as `application/json` lines (kubectl refuses other stream types); Table rows for `kubectl get -w`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp.web

from publishing_testkit.kube_emulator import errors, table
from publishing_testkit.kube_emulator.errors import JsonObject
from publishing_testkit.kube_emulator.resources import ResourceType
from publishing_testkit.kube_emulator.selectors import parse_selectors, selectable_fields
from publishing_testkit.kube_emulator.store import ClusterState

_LIVENESS_CHECK = 1.0  # seconds between checks that the client is still connected while idle


async def serve_watch(
    raw: aiohttp.web.BaseRequest,
    state: ClusterState,
    rtype: ResourceType,
    *,
    namespace: str | None,
    name: str | None,
    params: Mapping[str, str],
    accept: str,
    bookmark_interval: float,
    closing: asyncio.Event,
    cut: Callable[[], bool] = lambda: False,
) -> aiohttp.web.StreamResponse:
    """Stream the events; when `cut()` turns true (an injected fault) the connection drops mid-stream."""
    selected = parse_selectors(params, selectable_fields(rtype))
    if params.get("sendInitialEvents") == "true" and params.get("resourceVersionMatch") != "NotOlderThan":
        raise errors.invalid_list_options(  # before the stream starts: an HTTP 422, as on a real server
            "resourceVersionMatch",
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        )

    def matches(obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        return (
            (namespace is None or meta.get("namespace") == namespace)
            and (name is None or meta.get("name") == name)
            and selected(obj)
        )

    as_table = table.wants_table(accept)
    include = params.get("includeObject", "Metadata")
    columns_sent = False

    def wrap(obj: JsonObject) -> JsonObject:
        nonlocal columns_sent
        if not as_table:
            return obj
        rv = str(obj.get("metadata", {}).get("resourceVersion", ""))
        result = table.table(rtype, [obj], rv, include, with_columns=not columns_sent)
        columns_sent = True
        return result

    response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(raw)

    async def send(event_type: str, obj: JsonObject) -> None:
        line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n"
        await response.write(line.encode())

    def bookmark(rv: int, initial_end: bool = False) -> JsonObject:
        meta: JsonObject = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}

    loop = asyncio.get_running_loop()
    timeout = params.get("timeoutSeconds")
    deadline = loop.time() + float(timeout) if timeout and float(timeout) > 0 else None
    bookmarks = params.get("allowWatchBookmarks") == "true"
    requested = params.get("resourceVersion", "")
    initial = params.get("sendInitialEvents") == "true"

    try:
        if initial or requested in ("", "0"):
            last = state.rv
            for obj in state.select(rtype, namespace, matches):
                await send("ADDED", wrap(obj))
            if initial:
                await send("BOOKMARK", bookmark(last, initial_end=True))
        else:
            try:
                last = int(requested)
            except ValueError:
                await send("ERROR", errors.bad_request(f"invalid resourceVersion {requested!r}").to_status())
                return response
            started = state.registered_at.get(rtype.group_plural, 0)
            if last < started:  # older than this type's watch cache: kube-apiserver's 410
                await send("ERROR", errors.gone(f"too old resource version: {last} ({started})").to_status())
                return response
        next_bookmark = loop.time() + bookmark_interval
        while not closing.is_set():
            if cut():
                if raw.transport is not None:
                    raw.transport.abort()
                return response
            events = state.events_since(last)
            if events is None:
                oldest = state.log[0].rv if state.log else state.rv
                await send("ERROR", errors.gone(f"too old resource version: {last} ({oldest})").to_status())
                return response
            for event in events:
                last = event.rv
                if (event.group, event.plural) != rtype.group_plural:
                    continue
                now_matches, old_matched = matches(event.obj), matches(event.old)
                if event.type == "MODIFIED" and now_matches and not old_matched:
                    await send("ADDED", wrap(event.obj))
                elif event.type == "MODIFIED" and old_matched and not now_matches and event.old is not None:
                    gone_obj = {
                        **event.old,
                        "metadata": {**event.old.get("metadata", {}), "resourceVersion": str(event.rv)},
                    }
                    await send("DELETED", wrap(gone_obj))
                elif now_matches:
                    await send(event.type, wrap(event.obj))
            now = loop.time()
            if deadline is not None and now >= deadline:
                return response
            if bookmarks and now >= next_bookmark:
                await send("BOOKMARK", bookmark(last))
                next_bookmark = now + bookmark_interval
            if raw.transport is None or raw.transport.is_closing():
                return response
            wait = min(_LIVENESS_CHECK, max(0.0, next_bookmark - now))
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            if last >= state.rv:
                await state.wait_for_change(wait)
        return response
    except (ConnectionError, RuntimeError):
        # The client went away (RuntimeError: aiohttp refuses writes to a closed transport).
        return response


async def serve_expired(raw: aiohttp.web.BaseRequest, message: str) -> aiohttp.web.StreamResponse:
    """A watch that can only say 410 Gone: one ERROR event, as when its resourceVersion is too old."""
    response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(raw)
    line = json.dumps({"type": "ERROR", "object": errors.gone(message).to_status()}, separators=(",", ":"))
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write((line + "\n").encode())
    return response
