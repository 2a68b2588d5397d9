"""The Expo API simulator over real HTTP (aiohttp): GraphQL at /graphql, signed uploads, admin API.

Request handling mirrors what a client of api.expo.dev sees, in this order: injected faults
(latency, dropped connection, HTTP status, GraphQL error), the bearer token (401 with an empty
`errors` list for a bad one), document validation against the simulator's SDL (400
GRAPHQL_VALIDATION_FAILED), then execution. Every response carries an `expo-request-id` header,
and GraphQL errors carry `extensions.requestId`.

`serve_simulator()` runs it in the current event loop; `SimulatorThread` runs it in a thread for
synchronous code. Both expose `.url` (base URL; GraphQL at `.url + "/graphql"`) and `.state`.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute_sync,
    parse,
    validate,
)
from graphql.language import DocumentNode

from publishing_testkit.expo_simulator.admin import Handler, add_routes
from publishing_testkit.expo_simulator.resolvers import mutation_root, query_root
from publishing_testkit.expo_simulator.schema import simulator_schema
from publishing_testkit.expo_simulator.state import CallFault, CallRecord, SimulatorConfig, SimulatorState

logger = logging.getLogger("publishing_testkit.expo_simulator")

STATE: web.AppKey[SimulatorState] = web.AppKey("state", SimulatorState)


class _Dropped(Exception):
    """The connection was closed on purpose (a simulated network failure)."""


def _drop(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise _Dropped


def _operation_names(document: DocumentNode, operation_name: str | None) -> tuple[str | None, set[str], bool]:
    """(operationName, field names at the first two levels, is-mutation) of the chosen operation."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = next(
        (op for op in operations if operation_name is None or (op.name and op.name.value == operation_name)),
        None,
    )
    if chosen is None:
        return operation_name, set(), False
    names: set[str] = set()
    for field in chosen.selection_set.selections:
        if isinstance(field, FieldNode):
            names.add(field.name.value)
            for sub in field.selection_set.selections if field.selection_set else ():
                if isinstance(sub, FieldNode):
                    names.add(sub.name.value)
    name = chosen.name.value if chosen.name else operation_name
    return name, names, chosen.operation is OperationType.MUTATION


def _selection_count(document: DocumentNode, operation_name: str | None) -> int:
    for op in document.definitions:
        if isinstance(op, OperationDefinitionNode) and (op.name.value if op.name else None) == operation_name:
            return len(op.selection_set.selections)
    return 1


# Clients send the same few documents over and over: parse and validate each text once. A
# document that does not parse raises, and exceptions are not cached.
@functools.lru_cache(maxsize=256)
def _parsed(query: str) -> DocumentNode:
    return parse(query)


@functools.lru_cache(maxsize=256)
def _validation_errors(query: str) -> tuple[GraphQLError, ...]:
    return tuple(validate(simulator_schema(), _parsed(query)))


def _json(body: Any, status: int, request_id: str, extra: dict[str, str] | None = None) -> web.Response:
    headers = {"expo-request-id": request_id, **(extra or {})}
    return web.json_response(body, status=status, headers=headers)


def _error_body(message: str, request_id: str, **extensions: Any) -> dict[str, Any]:
    return {
        "data": None,
        "errors": [{"message": message, "extensions": {**extensions, "requestId": request_id}}],
    }


async def _apply_fault(
    request: web.Request, fault: CallFault, request_id: str, status_for_errors: int
) -> web.StreamResponse | None:
    """Answer for a fault that replaces the real answer, or None to go on (latency / drop-after)."""
    if fault.latency:
        await asyncio.sleep(fault.latency)
    if fault.drop == "before":
        return _drop(request)
    extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    if fault.error_code or fault.error_type or fault.is_transient is not None:
        extensions: dict[str, Any] = {"isTransient": bool(fault.is_transient)}
        if fault.error_code:
            extensions["errorCode"] = fault.error_code
        if fault.error_type:
            extensions["errorType"] = fault.error_type
        body = _error_body(fault.message or "simulated error", request_id, **extensions)
        return _json(body, fault.http_status or status_for_errors, request_id, extra)
    if fault.http_status and fault.body is None:
        if fault.http_status == 429:
            return _json({"errors": [{"message": "Too many requests"}]}, 429, request_id, extra)
        return web.Response(
            status=fault.http_status,
            text=f"simulated HTTP {fault.http_status}",
            headers={"expo-request-id": request_id, **extra},
        )
    return None


async def _read_graphql_request(
    request: web.Request, state: SimulatorState
) -> tuple[str, dict[str, Any], str | None]:
    if request.method == "GET":
        if not state.config.accept_get_queries:
            raise web.HTTPMethodNotAllowed("GET", ["POST"])
        raw_variables = request.query.get("variables")
        variables = json.loads(raw_variables) if raw_variables else {}
        return request.query.get("query", ""), variables or {}, request.query.get("operationName")
    body = await request.json()
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return str(body.get("query") or ""), body.get("variables") or {}, body.get("operationName")


async def graphql_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    request_id = uuid.uuid4().hex
    status_for_errors = state.config.graphql_error_status
    try:
        query, variables, operation_name = await _read_graphql_request(request, state)
        document = _parsed(query)
    except GraphQLError as exc:
        return _json(_error_body(exc.message, request_id, errorCode="GRAPHQL_PARSE_FAILED"), 400, request_id)
    except (ValueError, json.JSONDecodeError) as exc:
        return _json(
            _error_body(f"invalid request: {exc}", request_id, errorCode="BAD_REQUEST"), 400, request_id
        )
    name, fields, is_mutation = _operation_names(document, operation_name)
    record = CallRecord(
        time=state.now(),
        operation_name=name,
        fields=sorted(fields),
        http_status=0,
        selections=_selection_count(document, name),
    )
    state.record_call(record)
    fault = state.take_call_fault(fields | ({name} if name else set()))
    if fault is not None:
        record.fault = fault.model_dump_json(exclude_defaults=True)
        answer = await _apply_fault(request, fault, request_id, status_for_errors)
        if answer is not None:
            record.http_status = answer.status
            return answer
    if not _authorized(request, state):
        record.http_status = 401
        return _json({"errors": []}, 401, request_id)
    errors = _validation_errors(query)
    if errors:
        record.http_status = 400
        invalid = {
            "errors": [
                {
                    **e.formatted,
                    "extensions": {"errorCode": "GRAPHQL_VALIDATION_FAILED", "requestId": request_id},
                }
                for e in errors
            ]
        }
        return _json(invalid, 400, request_id)
    if request.method == "GET" and is_mutation:
        record.http_status = 405
        return _json(_error_body("mutations must be sent with POST", request_id), 405, request_id)
    upload_base = f"{request.scheme}://{request.host}"
    with state.lock:
        result = execute_sync(
            simulator_schema(),
            document,
            root_value=mutation_root(state, upload_base) if is_mutation else query_root(state),
            variable_values=variables,
            operation_name=operation_name,
        )
    if fault is not None and fault.drop == "after":
        return _drop(request)
    if fault is not None and fault.body is not None:
        record.http_status = fault.http_status or 200
        return web.Response(
            status=record.http_status,
            text=fault.body,
            content_type="application/json",
            headers={"expo-request-id": request_id},
        )
    body: dict[str, Any] = {
        "data": _rewritten(result.data, fault.rewrite) if fault and fault.rewrite else result.data
    }
    status = 200
    if result.errors:
        body["errors"] = [
            {**e.formatted, "extensions": {**(e.extensions or {}), "requestId": request_id}}
            for e in result.errors
        ]
        status = status_for_errors
    record.http_status = status
    return _json(body, status, request_id)


def _rewritten(data: Any, changes: dict[str, Any]) -> Any:
    """The answer's data with each dotted path set to its value (a fault: Expo answering oddly)."""
    data = json.loads(json.dumps(data))
    for path, value in changes.items():
        node = data
        *parents, last = path.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[last] = value
    return data


def _authorized(request: web.Request, state: SimulatorState) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return state.tokens is None or token.strip() in state.tokens


async def upload_handler(request: web.Request) -> web.StreamResponse:
    """A GCS-like signed-URL PUT: signature, Content-Type, Content-Length and Content-MD5 are checked."""
    state = request.app[STATE]
    request_id = uuid.uuid4().hex
    fault = state.take_call_fault({"upload"})
    if fault is not None:
        answer = await _apply_fault(request, fault, request_id, 500)
        if answer is not None:
            return answer
    key = request.match_info["key"]
    upload = state.uploads.get(key)
    if upload is None or request.query.get("X-Goog-Signature") != upload.signature:
        return _gcs_error(403, "SignatureDoesNotMatch", "The signature does not match this upload.")
    if request.headers.get("Content-Type") != upload.content_type:
        return _gcs_error(403, "SignatureDoesNotMatch", "Content-Type differs from the signed headers.")
    declared = request.headers.get("Content-Length")
    if declared is None or not declared.isdigit():
        return _gcs_error(411, "MissingContentLength", "Content-Length is required.")
    md5_header = request.headers.get("Content-MD5")
    if not md5_header:
        return _gcs_error(400, "InvalidDigest", "Content-MD5 is required by the simulator.")
    md5, sha, size = hashlib.md5(), hashlib.sha256(), 0
    async for chunk in request.content.iter_chunked(1024 * 1024):
        md5.update(chunk)
        sha.update(chunk)
        size += len(chunk)
    if size != int(declared):
        return _gcs_error(400, "IncompleteBody", f"received {size} bytes, Content-Length says {declared}")
    actual = base64.b64encode(md5.digest()).decode()
    if actual != md5_header:
        return _gcs_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    state.complete_upload(key, size=size, md5_base64=actual, sha256=sha.hexdigest())
    if fault is not None and fault.drop == "after":
        return _drop(request)
    return web.Response(status=200, headers={"ETag": f'"{md5.hexdigest()}"'})


def _gcs_error(status: int, code: str, message: str) -> web.Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


@web.middleware
async def _dropped_connections(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Dropped:
        # The transport is already aborted; this response is never written.
        return web.Response(status=499)
    except ConnectionResetError:
        # The client went away mid-request (e.g. a SIGKILLed operator): nobody is left to answer.
        return web.Response(status=499)


def make_app(state: SimulatorState) -> web.Application:
    app = web.Application(middlewares=[_dropped_connections], client_max_size=16 * 1024 * 1024)
    app[STATE] = state
    app.router.add_route("POST", "/graphql", graphql_handler)
    app.router.add_route("GET", "/graphql", graphql_handler)
    app.router.add_route("PUT", "/__upload/{key:.+}", upload_handler)
    add_routes(app.router, STATE)
    return app


@dataclass
class SimulatorHandle:
    url: str
    state: SimulatorState

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"


@asynccontextmanager
async def serve_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tokens: set[str] | None = None,
    config: SimulatorConfig | None = None,
    state: SimulatorState | None = None,
) -> AsyncIterator[SimulatorHandle]:
    """Serve the simulator on host:port (0 = any free port) for the duration of the context."""
    state = state or SimulatorState(config=config, tokens=tokens)
    runner = web.AppRunner(make_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        yield SimulatorHandle(url=f"http://{shown}:{bound_port}", state=state)
    finally:
        await runner.cleanup()


class SimulatorThread:
    """The simulator in a background thread with its own event loop, for synchronous callers.

    with SimulatorThread(tokens={"t"}) as sim:
        sim.url, sim.state
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: set[str] | None = None,
        config: SimulatorConfig | None = None,
    ) -> None:
        self.state = SimulatorState(config=config, tokens=tokens)
        self._host, self._port = host, port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._handle: SimulatorHandle | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="expo-simulator", daemon=True)

    @property
    def url(self) -> str:
        assert self._handle is not None, "the simulator is not running"
        return self._handle.url

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve_simulator(host=self._host, port=self._port, state=self.state) as handle:
            self._handle = handle
            self._ready.set()
            await self._stop.wait()

    def start(self, timeout: float = 10.0) -> SimulatorThread:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None or self._handle is None:
            raise RuntimeError(f"the Expo simulator did not start: {self._error!r}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
