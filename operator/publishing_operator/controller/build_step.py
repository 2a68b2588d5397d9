"""Building: create the EAS build exactly once per request key, then follow it, polling at intervals
that follow the EAS queue.

Three ways into START_BUILD (a claimed request key, no build id yet):
- this process claimed the key (`claimedBy`) and knows nothing was sent for it (`worker.fresh_key`):
  create;
- a GitHub build request was accepted (`build.receiptId`): the receipt names the build;
- anything else (a restart, an ambiguous failure, a second operator): find out what happened to
  the key before anything new is created (`resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from publishing_operator import backoff
from publishing_operator import lifecycle as lc
from publishing_operator.api import Phase, PublishingBuildSpec, PublishingBuildStatus
from publishing_operator.controller.claims import ensure_claim_current, window_closes
from publishing_operator.controller.step_context import StepContext
from publishing_operator.controller.worker import status_of
from publishing_operator.expo.errors import ErrorKind, ExpoError
from publishing_operator.expo.models import Build
from publishing_operator.lifecycle.eas import BUILD_WAITING

CONFIRM_POLL = timedelta(seconds=10)  # how often an unknown outcome is looked up again


async def start_build(sc: StepContext) -> float:
    build_status = sc.status.build
    assert build_status is not None and build_status.request_key is not None
    if build_status.receipt_id:
        return await follow_receipt(sc)
    if sc.holds_unsent_claim("build"):
        return await create(sc)
    return await resolve(sc)


# -- creating ----------------------------------------------------------------------------------------


async def create(sc: StepContext) -> float:
    """This process holds the claim and nothing was sent for it: send the create, once.

    On an ambiguous failure (the request may have reached Expo) the claim is no longer fresh: the
    next step resolves it. On a failure that provably sent nothing it stays fresh (retried directly,
    the claim renewed first if it has aged)."""
    key = sc.status.build.request_key if sc.status.build else None
    assert key is not None
    github = sc.spec.source.github
    try:
        if github is not None:
            async with sc.ctx.github_lock(*_github_tuple(sc.spec)):
                await ensure_claim_current(sc, "build")
                receipt_id = await sc.client.create_github_build(
                    app_id=sc.spec.app.project_id,
                    platform=sc.spec.app.platform,
                    profile=sc.spec.app.profile,
                    git_ref=github.ref,
                    base_directory=github.base_directory,
                )
                sc.worker.fresh_key = None
                await sc.commit(lc.on_receipt(sc.status, receipt_id, sc.lc_ctx()))
            sc.ctx.circuit.record_success()
            sc.ctx.limiter.mark_started(key)
            return 0  # the receipt names the build: follow it at once
        archive = sc.spec.source.archive
        assert archive is not None and sc.credentials is not None
        bucket_key = await sc.client.upload_archive(url=archive.url, sha256=archive.sha256)
        await ensure_claim_current(sc, "build")
        build = await sc.client.create_archive_build(
            app_id=sc.spec.app.project_id,
            platform=sc.spec.app.platform,
            profile=sc.spec.app.profile,
            bucket_key=bucket_key,
            project_root_directory=archive.project_root_directory,
            workflow=archive.workflow,
            build_version=sc.spec.app.build_version,
            signing=sc.credentials.signing,
            request_key=key,
        )
    except ExpoError as exc:
        if exc.ambiguous:
            sc.worker.fresh_key = None  # Expo may have it: look before creating again
        if exc.kind is ErrorKind.USER:
            await sc.commit(
                lc.on_build_rejected(
                    sc.status, error_code=exc.error_code, message=exc.message, ctx=sc.lc_ctx()
                )
            )
            return 0
        raise
    sc.worker.fresh_key = None
    sc.ctx.circuit.record_success()
    sc.ctx.limiter.mark_started(key)
    await sc.commit(
        lc.on_build_started(sc.spec, sc.status, observation(build), adopted=False, ctx=sc.lc_ctx())
    )
    return poll_delay(sc, build)


async def follow_receipt(sc: StepContext) -> float:
    """Expo accepted a GitHub build request: once its receipt names the build, the id goes into the
    status first (from then on nothing can lose it), then the build is stamped with the key."""
    assert sc.status.build is not None and sc.status.build.receipt_id is not None
    try:
        build_id = await sc.client.github_build_from_receipt(sc.status.build.receipt_id)
    except ExpoError as exc:
        if exc.kind is ErrorKind.USER:  # Expo gave the request up: no build exists
            await sc.commit(
                lc.on_build_rejected(
                    sc.status, error_code=exc.error_code, message=exc.message, ctx=sc.lc_ctx()
                )
            )
            return 0
        raise
    if build_id is None:
        return receipt_poll(sc)
    await adopt(sc, await sc.client.get_build(build_id), adopted=False)
    return 0


async def adopt(sc: StepContext, build: Build, *, adopted: bool) -> None:
    """Record a build of this request key, then stamp the key into it if it is not there yet."""
    key = sc.status.build.request_key if sc.status.build else None
    assert key is not None
    sc.ctx.limiter.restore([key], [(key, build.createdAt.timestamp())])
    await sc.commit(
        lc.on_build_started(sc.spec, sc.status, observation(build), adopted=adopted, ctx=sc.lc_ctx())
    )
    await stamp(sc, build)


async def stamp(sc: StepContext, build: Build) -> None:
    """Best effort: the key in the build's message lets anyone see whose build it is. A failure
    changes nothing that matters (the id is in the status); polling stamps it later."""
    key = sc.status.build.request_key if sc.status.build else None
    if key is None or build.message is not None:
        return
    try:
        await sc.client.update_build_message(build.id, key)
    except ExpoError as exc:
        sc.worker.log.info(
            "could not stamp EAS build %s with its request key yet (%s)", build.id, exc.kind.value
        )


# -- an unknown outcome ------------------------------------------------------------------------------


async def resolve(sc: StepContext) -> float:
    """A claimed key whose create this process did not just send: what happened to it?

    Found by the key (or, for a GitHub build not stamped yet, provably ours) → adopt. Not found
    while a create may still arrive or appear → wait and say so. Archive: once no create for the
    key can still reach Expo, the key is given up for a new one. GitHub: Expo may reveal an
    accepted request at any time, so after `START_CONFIRM_TIMEOUT` the attempt fails as
    Unconfirmed instead: nothing is ever created a second time."""
    build_status = sc.status.build
    assert build_status is not None and build_status.request_key is not None
    found = await locate(sc)
    if found.build is not None:
        await adopt(sc, found.build, adopted=True)
        return 0
    now = sc.now()
    if sc.spec.source.github is None:
        closes = window_closes(sc, build_status.requested_at)
        if now < closes:
            return await _confirming(sc, "the build request's answer never arrived", closes)
        old = build_status.request_key
        transition = lc.on_claimed(
            sc.status, "build", "no build exists for the previous request", sc.lc_ctx()
        )
        assert transition.status.build is not None and transition.status.build.request_key is not None
        new = transition.status.build.request_key
        sc.worker.fresh_key = new  # before the write: if its answer is lost, the claim is still known ours
        await sc.commit(transition)
        sc.ctx.limiter.forget(old)  # the same start slot, under its new key
        sc.ctx.limiter.restore([new], [(new, now.timestamp())])
        return 0
    deadline = (build_status.requested_at or now) + sc.ctx.settings.start_confirm_timeout
    if now < deadline:
        return await _confirming(sc, found.why, deadline)
    await sc.commit(lc.on_unconfirmed(sc.status, found.why, sc.lc_ctx()))
    return 0


async def _confirming(sc: StepContext, why: str, until: datetime) -> float:
    await sc.commit(lc.on_confirming(sc.status, "build", why, until, sc.lc_ctx()))
    return confirm_poll(sc, until)


def confirm_poll(sc: StepContext, until: datetime) -> float:
    """Look again soon, and exactly when the wait is over."""
    remaining = (until - sc.now()).total_seconds()
    return max(min(CONFIRM_POLL.total_seconds(), remaining), 0.1)


@dataclass(frozen=True)
class Located:
    build: Build | None
    why: str = ""  # when not found: why the outcome is still open


async def locate(sc: StepContext) -> Located:
    """This request key's build on EAS, if it provably exists.

    By the key stamped in its message (archive builds carry it from creation; GitHub builds once
    stamped). A GitHub build that its creator could not stamp yet is ours only if it is the one
    un-stamped build of this app, platform, profile and ref that our token started since the
    claim, and no other live resource of the same ref has a request whose build is not known yet
    (their builds are known by id: excluded)."""
    build_status = sc.status.build
    assert build_status is not None and build_status.request_key is not None
    key, app = build_status.request_key, sc.spec.app
    if build_status.id:
        return Located(await sc.client.get_build(build_status.id))
    if build_status.receipt_id:
        build_id = await sc.client.github_build_from_receipt(build_status.receipt_id)
        return Located(await sc.client.get_build(build_id) if build_id else None, "Expo is still creating it")
    builds = await sc.client.find_builds(app_id=app.project_id, platform=app.platform, profile=app.profile)
    for build in builds:
        if build.message == key:
            return Located(build)
    github = sc.spec.source.github
    if github is None:
        return Located(None, "no build carries the request key")
    open_requests, others = _other_requests(sc)
    if open_requests:
        return Located(None, f"{open_requests} other request(s) for the same ref are still open")
    since = (build_status.requested_at or sc.now()) - sc.ctx.settings.clock_skew - timedelta(seconds=1)
    mine = await sc.client.actor_id()
    candidates = [
        build
        for build in builds
        if build.message is None
        and build.gitRef == github.ref
        and build.createdAt >= since
        and build.id not in others
        and (build.initiatingActor is None or build.initiatingActor.id == mine)
    ]
    if len(candidates) == 1:
        return Located(candidates[0])
    if candidates:
        return Located(None, f"{len(candidates)} un-stamped builds of the ref could be it")
    return Located(None, "the answer to the GitHub build request was lost and no build has appeared")


def _other_requests(sc: StepContext) -> tuple[int, set[str]]:
    """Other live resources building the same app, platform, profile and ref: how many have a
    request whose build is not known yet, and the build ids the others own."""
    mine = _github_tuple(sc.spec)
    unsent = sc.ctx.unsent_keys()  # claimed by this process, nothing sent: cannot have built anything
    open_requests, ids = 0, set()
    for body in sc.ctx.live_objects():
        if body.get("metadata", {}).get("uid") == sc.worker.uid:
            continue
        try:
            spec = PublishingBuildSpec.model_validate(body.get("spec") or {})
        except ValueError:
            continue
        if spec.source.github is None or _github_tuple(spec) != mine:
            continue
        other: PublishingBuildStatus = status_of(body)
        if other.build is None:
            continue
        if other.build.id:
            ids.add(other.build.id)
        elif other.build.request_key and other.phase is Phase.BUILDING:
            if other.build.request_key in unsent and other.build.claimed_by == sc.ctx.identity:
                continue
            open_requests += 1
    return open_requests, ids


def _github_tuple(spec: PublishingBuildSpec) -> tuple[str, str, str, str]:
    assert spec.source.github is not None
    return (spec.app.project_id, spec.app.platform.value, spec.app.profile, spec.source.github.ref)


# -- following the build -----------------------------------------------------------------------------


async def poll_build(sc: StepContext) -> float:
    assert sc.status.build is not None and sc.status.build.id is not None
    build = await sc.client.poll_build(sc.status.build.id)  # coalesced with the token's other builds
    sc.ctx.circuit.record_success()
    transition = lc.on_build_observed(sc.spec, sc.status, observation(build), sc.lc_ctx())
    if transition.status.phase is Phase.SUBMITTING and transition.status.submission:
        sc.worker.fresh_key = transition.status.submission.request_key  # claimed by this write
    await sc.commit(transition)
    await stamp(sc, build)
    if transition.status.phase is not Phase.BUILDING:
        return 0
    return poll_delay(sc, build)


def poll_delay(sc: StepContext, build: Build) -> float:
    """Adaptive: by queue position / estimated wait while queued, POLL_BUILD while building."""
    base = sc.ctx.settings.poll_build.total_seconds()
    if build.status.value in BUILD_WAITING:
        if build.estimatedWaitTimeLeftSeconds:
            return jitter(min(max(build.estimatedWaitTimeLeftSeconds / 2, base / 2), base * 10))
        if build.queuePosition:
            return jitter(min(base * (1 + build.queuePosition / 5), base * 10))
    return jitter(base)


def receipt_poll(sc: StepContext) -> float:
    """A GitHub build request usually becomes a build within seconds."""
    return jitter(min(max(sc.ctx.settings.poll_build.total_seconds() / 10, 0.1), 2.0))


def jitter(seconds: float) -> float:
    """±10%: many builds started together do not poll Expo in lockstep."""
    return backoff.spread(seconds, low=0.9, high=1.1)


def observation(build: Build) -> lc.BuildObservation:
    artifacts = build.artifacts
    return lc.BuildObservation(
        id=build.id,
        status=build.status.value,
        url=build.url,
        artifact_url=(artifacts.applicationArchiveUrl or artifacts.buildUrl) if artifacts else None,
        queue_position=build.queuePosition,
        estimated_wait_seconds=build.estimatedWaitTimeLeftSeconds,
        error_code=build.error.errorCode if build.error else None,
        error_message=build.error.message if build.error else None,
        created_at=build.createdAt,
        completed_at=build.completedAt,
    )
