"""Building: create the EAS build once per attempt (or adopt the one a crash left behind), then
follow it, polling at intervals that follow the EAS queue."""

from __future__ import annotations

from datetime import timedelta

from publishing_operator import backoff
from publishing_operator import lifecycle as lc
from publishing_operator.api import Phase
from publishing_operator.controller.step_context import StepContext
from publishing_operator.expo.errors import ErrorKind, ExpoError
from publishing_operator.expo.models import Build
from publishing_operator.lifecycle.eas import BUILD_WAITING

# How far before the request key was written an un-stamped GitHub build may have been created.
ADOPT_CLOCK_SKEW = timedelta(minutes=2)


async def start_build(sc: StepContext) -> float:
    assert sc.status.build is not None and sc.status.build.request_key is not None
    key = sc.status.build.request_key
    if sc.worker.fresh_key != key:
        # Not written by this process just now: EAS may already have the build (crash recovery).
        found = await find_build(sc)
        if found is not None:
            sc.ctx.limiter.restore([key], [(key, found.createdAt.timestamp())])
            await sc.commit(
                lc.on_build_started(sc.spec, sc.status, observation(found), adopted=True, ctx=sc.lc_ctx())
            )
            return poll_delay(sc, found)
    sc.worker.fresh_key = None  # whatever happens next, a retry must look the build up first
    try:
        build = await create_build(sc, key)
    except ExpoError as exc:
        if exc.kind is ErrorKind.USER:
            await sc.commit(
                lc.on_build_rejected(
                    sc.status, error_code=exc.error_code, message=exc.message, ctx=sc.lc_ctx()
                )
            )
            return 0
        raise
    sc.ctx.circuit.record_success()
    sc.ctx.limiter.mark_started(key)
    await sc.commit(
        lc.on_build_started(sc.spec, sc.status, observation(build), adopted=False, ctx=sc.lc_ctx())
    )
    return poll_delay(sc, build)


async def create_build(sc: StepContext, key: str) -> Build:
    app, client, credentials = sc.spec.app, sc.client, sc.credentials
    assert credentials is not None
    if sc.spec.source.github is not None:
        return await client.start_github_build(
            app_id=app.project_id,
            platform=app.platform,
            profile=app.profile,
            git_ref=sc.spec.source.github.ref,
            base_directory=sc.spec.source.github.base_directory,
            request_key=key,
        )
    archive = sc.spec.source.archive
    assert archive is not None
    bucket_key = await client.upload_archive(url=archive.url, sha256=archive.sha256)
    return await client.create_archive_build(
        app_id=app.project_id,
        platform=app.platform,
        profile=app.profile,
        bucket_key=bucket_key,
        project_root_directory=archive.project_root_directory,
        workflow=archive.workflow,
        build_version=app.build_version,
        signing=credentials.signing,
        request_key=key,
    )


async def find_build(sc: StepContext) -> Build | None:
    """The build this attempt already started, by the request key stamped in its message.

    A GitHub build is stamped just after it is created; one created by a process that died
    before stamping it is recognised by its ref and creation time, then stamped now.
    """
    build_status = sc.status.build
    assert build_status is not None
    key, app = build_status.request_key, sc.spec.app
    builds = await sc.client.find_builds(app_id=app.project_id, platform=app.platform, profile=app.profile)
    for build in builds:
        if build.message == key:
            return build
    github, requested = sc.spec.source.github, build_status.requested_at
    if github is not None and requested is not None and key:
        for build in builds:
            if (
                build.message is None
                and build.gitRef == github.ref
                and build.createdAt >= requested - ADOPT_CLOCK_SKEW
            ):
                return await sc.client.update_build_message(build.id, key)
    return None


async def poll_build(sc: StepContext) -> float:
    assert sc.status.build is not None and sc.status.build.id is not None
    build = await sc.client.get_build(sc.status.build.id)
    sc.ctx.circuit.record_success()
    transition = lc.on_build_observed(sc.spec, sc.status, observation(build), sc.lc_ctx())
    await sc.commit(transition)
    if transition.status.phase is Phase.SUBMITTING and transition.status.submission:
        sc.worker.fresh_key = transition.status.submission.request_key  # written by us, not sent yet
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
