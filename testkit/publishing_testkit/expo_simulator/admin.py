"""The simulator's admin API, for tests, benchmarks and the sandbox. JSON in, JSON out; no auth.

GET  /__simulator/builds        every build: id, appId, platform, profile, status, message, createdAt,
                                completedAt, origin (archive|github), gitRef, source {type, bucketKey,
                                size, md5, sha256 | url | repositoryUrl}, bucketKey, workflow,
                                projectRootDirectory, version, resourceClass, metadata,
                                credentialsFingerprint (sha256 prefix of job.secrets), errorCode,
                                submissionIds
GET  /__simulator/submissions   every submission: id, appId, platform, buildId, profile, status,
                                message (of its build), createdAt, completedAt, config (secrets
                                removed; ascApiKey.keyP8Fingerprint / googleServiceAccountKeyJsonFingerprint
                                instead), credentialsFingerprint, errorCode
GET  /__simulator/calls         every GraphQL call: operationName, fields, httpStatus, fault, time
GET  /__simulator/config        the configuration (see SimulatorConfig for every knob)
POST /__simulator/config        change some knobs: {"time_scale": 0.01, "build_seconds": 300, ...}
POST /__simulator/faults        {"calls": [CallFault...], "outcomes": [OutcomeFault...]} or one fault
                                object (one with "target" is an outcome fault). CallFault:
                                {operation ("createIosBuild" | "byId" | "BuildById" | "upload" | "*"),
                                count, http_status, retry_after, error_code, error_type, is_transient,
                                message, latency (s), drop ("before" | "after")}. OutcomeFault:
                                {target ("build" | "submission" | "receipt"), count, error_code,
                                message, platform ("IOS" | "ANDROID" | null)}
GET  /__simulator/faults        faults not used up yet
POST /__simulator/advance       {"seconds": N}: move simulated time forward by N real seconds
POST /__simulator/apps          {"id", "slug", "owner"}: register an app (see auto_create_apps)
GET  /__simulator/apps          the known apps
POST /__simulator/reset         forget everything, restore the starting configuration
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from publishing_testkit.expo_simulator.state import CallFault, FaultsRequest, OutcomeFault, SimulatorState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/__simulator"


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _bad(exc: ValidationError) -> web.Response:
    return web.json_response({"error": str(exc)}, status=400)


def add_routes(router: web.UrlDispatcher, key: web.AppKey[SimulatorState]) -> None:
    def state_of(request: web.Request) -> SimulatorState:
        return request.app[key]

    async def builds(request: web.Request) -> web.StreamResponse:
        return web.json_response(state_of(request).describe_builds())

    async def add_build(request: web.Request) -> web.StreamResponse:
        """A GitHub build started outside the operator: {appId, platform, gitRef, profile, actor, message}."""
        body = await _body(request)
        build = state_of(request).add_outside_build(
            app_id=body["appId"],
            platform=body.get("platform", "IOS"),
            git_ref=body["gitRef"],
            profile=body.get("profile", "production"),
            actor=body.get("actor", "user-someone-else"),
            message=body.get("message"),
        )
        return web.json_response({"id": build.id})

    async def submissions(request: web.Request) -> web.StreamResponse:
        return web.json_response(state_of(request).describe_submissions())

    async def calls(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        with state.lock:
            records = [
                {
                    "operationName": c.operation_name,
                    "fields": c.fields,
                    "httpStatus": c.http_status,
                    "fault": c.fault,
                    "time": state.wall(c.time),
                }
                for c in state.calls
            ]
        return web.json_response(records)

    async def get_config(request: web.Request) -> web.StreamResponse:
        return web.json_response(state_of(request).config.model_dump())

    async def set_config(request: web.Request) -> web.StreamResponse:
        try:
            config = state_of(request).configure(await _body(request))
        except ValidationError as exc:
            return _bad(exc)
        return web.json_response(config.model_dump())

    async def add_faults(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        try:
            if "calls" in body or "outcomes" in body:
                faults = FaultsRequest.model_validate(body)
            elif "target" in body:
                faults = FaultsRequest(outcomes=[OutcomeFault.model_validate(body)])
            else:
                faults = FaultsRequest(calls=[CallFault.model_validate(body)])
        except ValidationError as exc:
            return _bad(exc)
        state_of(request).add_faults(faults)
        return await list_faults(request)

    async def list_faults(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        with state.lock:
            pending = FaultsRequest(calls=list(state.call_faults), outcomes=list(state.outcome_faults))
        return web.json_response(pending.model_dump())

    async def advance(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            return web.json_response({"error": 'expected {"seconds": <non-negative number>}'}, status=400)
        state_of(request).advance_clock(float(seconds))
        return web.json_response({"advanced": seconds})

    async def add_app(request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        if not isinstance(body.get("id"), str):
            return web.json_response({"error": 'expected {"id": ..., "slug"?, "owner"?}'}, status=400)
        app = state_of(request).add_app(body["id"], slug=body.get("slug"), owner=body.get("owner"))
        return web.json_response(asdict(app))

    async def list_apps(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        with state.lock:
            return web.json_response([asdict(app) for app in state.apps.values()])

    async def reset(request: web.Request) -> web.StreamResponse:
        state_of(request).reset()
        return web.json_response({"reset": True})

    router.add_get(f"{PREFIX}/builds", builds)
    router.add_post(f"{PREFIX}/builds", add_build)
    router.add_get(f"{PREFIX}/submissions", submissions)
    router.add_get(f"{PREFIX}/calls", calls)
    router.add_get(f"{PREFIX}/config", get_config)
    router.add_post(f"{PREFIX}/config", set_config)
    router.add_get(f"{PREFIX}/faults", list_faults)
    router.add_post(f"{PREFIX}/faults", add_faults)
    router.add_post(f"{PREFIX}/advance", advance)
    router.add_get(f"{PREFIX}/apps", list_apps)
    router.add_post(f"{PREFIX}/apps", add_app)
    router.add_post(f"{PREFIX}/reset", reset)
