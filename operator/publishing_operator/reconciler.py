"""One worker per live PublishingBuild: reads its status, asks the lifecycle what comes next, does
that one step (Kubernetes, Secrets, the limiter, Expo) and writes the resulting status.

Level-triggered: every decision is recomputed from the persisted status, so a restarted operator
picks up exactly where the last one stopped. Workers are woken by watch events (handlers.py), by the
limiter when a start slot frees, or by their own timer (adaptive poll intervals with jitter). A
worker exits when its resource needs nothing more; the next relevant watch event starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import kopf
from pydantic import ValidationError

from publishing_operator import lifecycle as lc
from publishing_operator.api import (
    API_VERSION,
    COND_CREDENTIALS,
    FINALIZER,
    FINISHED_PHASES,
    IN_FLIGHT_PHASES,
    KIND,
    RESULT_LABEL,
    RETRY_ANNOTATION,
    Phase,
    PublishingBuildSpec,
    PublishingBuildStatus,
    Reason,
)
from publishing_operator.circuit import CircuitBreaker
from publishing_operator.credentials import (
    CredentialCheck,
    ResolvedCredentials,
    SecretReadError,
    recheck_delay,
    resolve_credentials,
)
from publishing_operator.durations import format_duration
from publishing_operator.expo.client import ExpoClient
from publishing_operator.expo.errors import ErrorKind, ExpoError
from publishing_operator.expo.models import Build, Submission
from publishing_operator.history import RetentionLoop, utc_now
from publishing_operator.kube import KubeApi, KubeError
from publishing_operator.limiter import Denial, LimitReason, StartLimiter
from publishing_operator.logs import SCRUBBER
from publishing_operator.metrics import Metrics, RetryReason, Stage
from publishing_operator.settings import Settings

log = logging.getLogger("publishing_operator.reconciler")

# Deleting an in-flight resource cancels its EAS work first, but never holds deletion longer.
DELETE_CANCEL_TIMEOUT = timedelta(minutes=5)
# How far before the request key was written an un-stamped GitHub build may have been created.
ADOPT_CLOCK_SKEW = timedelta(minutes=2)
# Transient trouble (Expo 5xx, network, Kubernetes API) is retried in place: 0.5 s, 1 s, 2 s ... 30 s.
TRANSIENT_BACKOFF_INITIAL = 0.5
TRANSIENT_BACKOFF_CAP = 30.0
TELL_USER_AFTER = 3  # consecutive transient failures before status and an Event say so


@dataclass
class OperatorContext:
    """What every worker shares. Lives in kopf's operator memo; memory is only a cache."""

    settings: Settings
    kube: KubeApi
    limiter: StartLimiter
    circuit: CircuitBreaker
    http: httpx.AsyncClient  # one connection pool for every Expo token
    clock: Callable[[], datetime] = utc_now
    workers: dict[str, Worker] = field(default_factory=dict)
    seen_rv: dict[str, int] = field(default_factory=dict)  # newest resourceVersion seen per uid
    retention: RetentionLoop | None = None  # history limits and TTL (history.py)
    metrics: Metrics = field(default_factory=Metrics)
    stopping: bool = False
    _clients: dict[str, ExpoClient] = field(default_factory=dict)

    def expo_clients(self) -> list[ExpoClient]:
        return list(self._clients.values())

    def expo(self, token: str) -> ExpoClient:
        """One client per distinct token (keyed by its hash, never by the token itself)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        client = self._clients.get(digest)
        if client is None:
            client = self._clients[digest] = ExpoClient(
                self.settings.expo_api_url,
                token,
                http=self.http,
                on_request=self.metrics.expo_request,
                archive_policy=self.settings.archive_policy,
            )
        return client

    def observe(self, body: Mapping[str, Any]) -> None:
        """A watch event: refresh the worker's copy of the object, or start a worker if needed."""
        uid = str(body.get("metadata", {}).get("uid", ""))
        if not uid:
            return
        if _rv(body) and _rv(body) < self.seen_rv.get(uid, 0):
            return  # an older copy than one we already have (e.g. the echo of our own write)
        self.seen_rv[uid] = max(self.seen_rv.get(uid, 0), _rv(body))
        status = status_of(body)  # parsed once per event: the hot path of a busy cluster
        self.metrics.phases.set(uid, status.phase)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(body)
        elif not self.stopping and needs_work(body, status):
            worker = self.workers[uid] = Worker(self, body)
            worker.start()

    def forget(self, body: Mapping[str, Any]) -> None:
        """The object is gone from the API."""
        uid = str(body.get("metadata", {}).get("uid", ""))
        self.metrics.phases.discard(uid)
        self.seen_rv.pop(uid, None)
        worker = self.workers.pop(uid, None)
        if worker is not None:
            worker.stop()
        # Leave the limiter's queue (a Queued resource) or free its in-flight slot.
        self.limiter.forget(lc.build_request_key(uid, status_of(body).attempt or 1))

    def wake_waiting(self, keys: object = None) -> None:
        """A start slot freed: wake every worker that waits for one (the limiter keeps FIFO order)."""
        for worker in list(self.workers.values()):
            if worker.waiting_for_slot:
                worker.wake.set()


def needs_work(body: Mapping[str, Any], status: PublishingBuildStatus) -> bool:
    """Does this object need a worker? Finished objects only for labels, finalizers or a retry."""
    meta = body.get("metadata", {})
    finalizers = meta.get("finalizers") or []
    if meta.get("deletionTimestamp"):
        return FINALIZER in finalizers
    if status.phase not in FINISHED_PHASES:
        return True
    retry = (meta.get("annotations") or {}).get(RETRY_ANNOTATION)
    label = (meta.get("labels") or {}).get(RESULT_LABEL)
    return (
        FINALIZER in finalizers
        or label != lc.result_label(status.phase)
        or (retry is not None and retry != status.retry_request)
    )


def status_of(body: Mapping[str, Any]) -> PublishingBuildStatus:
    try:
        return PublishingBuildStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return PublishingBuildStatus()


def _rv(body: Mapping[str, Any]) -> int:
    try:
        return int(body.get("metadata", {}).get("resourceVersion", "0"))
    except (TypeError, ValueError):
        return 0


class WorkerLog(logging.LoggerAdapter[logging.Logger]):
    """Every line of a worker carries the resource, its build id, attempt and phase."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(log, {})
        self.worker = worker

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        w = self.worker
        status = status_of(w.body)
        kwargs["extra"] = {
            "namespace": w.namespace,
            "resource": w.name,
            "uid": w.uid,
            "phase": status.phase.value if status.phase else None,
            "attempt": status.attempt,
            "build_id": status.build.id if status.build else None,
        }
        return msg, kwargs


class Worker:
    def __init__(self, ctx: OperatorContext, body: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.body: dict[str, Any] = dict(body)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.waiting_for_slot = False
        # A build or submission request key this process wrote and has not sent to EAS yet: such a
        # request needs no look-up first (after a restart, or any failure, it always does).
        self.fresh_key: str | None = None
        self.credential_failures = 0
        self.transient_failures = 0
        self.credentials: ResolvedCredentials | None = None
        meta = self.body.get("metadata", {})
        self.namespace = str(meta.get("namespace", ""))
        self.name = str(meta.get("name", ""))
        self.uid = str(meta.get("uid", ""))
        self.log = WorkerLog(self)

    # -- life of the worker --------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self.run(), name=f"pb/{self.namespace}/{self.name}"
        )

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def update(self, body: Mapping[str, Any], *, own: bool = False) -> None:
        """A newer copy of the object: from a watch event (wakes the worker) or our own write."""
        # Watch events and our own write responses race: never go back to an older version, and
        # do not wake for the echo of our own write (already seen through the write's response).
        newer = _rv(body) > _rv(self.body) or _rv(body) == 0
        if newer or own:
            self.body = dict(body)
            self.ctx.seen_rv[self.uid] = max(self.ctx.seen_rv.get(self.uid, 0), _rv(body))
        if newer and not own:
            self.wake.set()

    async def run(self) -> None:
        try:
            while not self.ctx.stopping:
                self.wake.clear()
                delay = await self.step_safely()
                if delay is None:
                    if self.wake.is_set():
                        continue  # something changed while we worked: look again before leaving
                    return
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), timeout=delay)
        finally:
            if self.ctx.workers.get(self.uid) is self:
                del self.ctx.workers[self.uid]

    async def step_safely(self) -> float | None:
        """One step; transient trouble (API hiccups, Expo down) is retried in place, never fatal."""
        try:
            delay = await self.step()
            self.transient_failures = 0
            return delay
        except (KubeError, SecretReadError) as exc:
            self.ctx.metrics.retry(Stage.API, RetryReason.KUBERNETES_ERROR)
            return await self._transient(f"Kubernetes API: {exc}", tell_user=False)
        except ExpoError as exc:
            self.ctx.metrics.retry(Stage.API, RetryReason.EXPO_ERROR)
            if exc.is_transient:
                self.ctx.circuit.record_failure()
            return max(exc.retry_after or 0.0, await self._transient(str(exc)))
        except asyncio.CancelledError:
            raise
        except Exception:
            self.ctx.metrics.retry(Stage.API, RetryReason.UNEXPECTED_ERROR)
            self.log.exception("unexpected error in a reconcile step; retrying")
            return await self._transient("unexpected error (see the operator log)")

    async def _transient(self, what: str, *, tell_user: bool = True) -> float:
        self.transient_failures += 1
        exponent = min(self.transient_failures - 1, 10)
        backoff = min(TRANSIENT_BACKOFF_CAP, TRANSIENT_BACKOFF_INITIAL * 2.0**exponent)
        delay = backoff * random.uniform(0.8, 1.2)
        self.log.warning("%s; retrying in %.1fs (not counted as an attempt)", what, delay)
        if tell_user and self.transient_failures == TELL_USER_AFTER:
            # Still failing after a few quick retries: the user should see why nothing moves.
            status = status_of(self.body)
            with contextlib.suppress(KubeError):
                await self.commit(status, lc.on_step_trouble(status, what, self.ctx_for(self.ctx.clock())))
        return delay

    # -- one step --------------------------------------------------------------------------------

    async def step(self) -> float | None:
        meta = self.body.get("metadata", {})
        status = status_of(self.body)
        now = self.ctx.clock()
        if meta.get("deletionTimestamp"):
            return await self.finalize(status, now)
        try:
            spec = PublishingBuildSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as exc:
            if status.phase in FINISHED_PHASES:
                await self.tidy(status)
                return None
            problem = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()[:3]
            )
            await self.commit(status, lc.on_invalid_spec(status, problem, self.ctx_for(now)))
            return 0

        retry = (meta.get("annotations") or {}).get(RETRY_ANNOTATION)
        if retry is not None and retry != status.retry_request:
            return await self.manual_retry(status, retry, now)

        step = lc.next_step(spec, status, now)
        self.waiting_for_slot = step is lc.Step.ACQUIRE_SLOT
        if step is lc.Step.NOTHING:
            await self.tidy(status)
            return None
        if step is lc.Step.CHECK_CREDENTIALS:
            return await self.check_credentials(spec, status, now)
        if step is lc.Step.ACQUIRE_SLOT:
            return await self.acquire_slot(spec, status, now)
        if step is lc.Step.WAIT_RETRY:
            assert status.next_retry_time is not None
            return max((status.next_retry_time - now).total_seconds(), 0.0)
        if step is lc.Step.FINISH_CANCELLED:
            await self.commit(status, lc.on_nothing_to_cancel(spec, status, self.ctx_for(now)))
            return 0
        # Every other step talks to Expo with the resource's credentials.
        credentials = await self.ensure_credentials(spec, status, now)
        if credentials is None:
            return self.recheck_after()
        client = self.ctx.expo(credentials.expo_token.get_secret_value())
        try:
            if step is lc.Step.START_BUILD:
                return await self.start_build(client, spec, status, credentials, now)
            if step is lc.Step.POLL_BUILD:
                return await self.poll_build(client, spec, status, now)
            if step is lc.Step.START_SUBMISSION:
                return await self.start_submission(client, spec, status, credentials, now)
            if step is lc.Step.POLL_SUBMISSION:
                return await self.poll_submission(client, spec, status, now)
            if step is lc.Step.CANCEL:
                return await self.cancel(client, spec, status, now)
        except ExpoError as exc:
            if exc.kind is ErrorKind.AUTH:
                self.credentials = None
                await self.commit(
                    status, lc.on_unauthorized(status, spec.expo.token_secret_ref.name, self.ctx_for(now))
                )
                return self.recheck_after()
            raise
        return None

    def ctx_for(self, now: datetime) -> lc.Ctx:
        generation = self.body.get("metadata", {}).get("generation")
        return lc.Ctx(uid=self.uid, generation=generation if isinstance(generation, int) else None, now=now)

    # -- Pending: credentials ------------------------------------------------------------------

    async def check_credentials(
        self, spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime
    ) -> float:
        check = await resolve_credentials(self.ctx.kube, self.namespace, spec)
        if (
            check.ok
            and check.credentials is not None
            and await self.token_still_refused(status, check.credentials)
        ):
            return self.recheck_after()
        if check.ok:
            self.remember(check.credentials)
            self.credential_failures = 0
            await self.commit(
                status,
                lc.on_credentials(
                    status, ok=True, reason=check.reason, message=check.message, ctx=self.ctx_for(now)
                ),
            )
            return 0
        delay = self.recheck_after()
        await self.report_bad_credentials(status, check, now, delay)
        return delay

    async def token_still_refused(
        self, status: PublishingBuildStatus, credentials: ResolvedCredentials
    ) -> bool:
        """After Expo refused the token, ask Expo (meActor) before spending a start slot again."""
        before = status.condition(COND_CREDENTIALS)
        if before is None or before.reason != Reason.UNAUTHORIZED:
            return False
        try:
            await self.ctx.expo(credentials.expo_token.get_secret_value()).whoami()
        except ExpoError as exc:
            if exc.kind is ErrorKind.AUTH:
                self.log.info("the Expo token is still refused; checking again later")
                return True
            raise
        return False

    async def report_bad_credentials(
        self, status: PublishingBuildStatus, check: CredentialCheck, now: datetime, delay: float
    ) -> None:
        self.log.warning("credentials not ready: %s", check.message)
        transition = lc.on_credentials(
            status,
            ok=False,
            reason=check.reason,
            message=check.message,
            ctx=self.ctx_for(now),
            recheck_at=now + timedelta(seconds=delay),
        )
        await self.commit(status, transition)

    def recheck_after(self) -> float:
        self.credential_failures += 1
        return recheck_delay(self.credential_failures).total_seconds()

    async def ensure_credentials(
        self, spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime
    ) -> ResolvedCredentials | None:
        """Credentials for an in-flight step: cached in memory, re-read after a restart."""
        if self.credentials is None:
            check = await resolve_credentials(self.ctx.kube, self.namespace, spec)
            if not check.ok:
                await self.report_bad_credentials(
                    status, check, now, recheck_delay(self.credential_failures + 1).total_seconds()
                )
                return None
            self.remember(check.credentials)
        return self.credentials

    def remember(self, credentials: ResolvedCredentials | None) -> None:
        """Cache the resolved credentials, and keep their values out of every log line."""
        self.credentials = credentials
        if credentials is not None:
            SCRUBBER.register(credentials.secret_values())

    # -- Queued: the start slot ------------------------------------------------------------------

    async def acquire_slot(
        self, spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime
    ) -> float:
        ctx = self.ctx_for(now)
        if not self.ctx.circuit.allows_new_work():
            wait = max(self.ctx.circuit.reopens_in(), 1.0)
            transition = lc.on_slot_denied(
                status,
                reason=Reason.EXPO_UNAVAILABLE,
                detail=f"Expo's API keeps failing ({self.ctx.circuit.consecutive_failures} errors in a row); "
                "new builds wait until it recovers",
                retry_at=now + timedelta(seconds=wait),
                ctx=ctx,
            )
            await self.commit(status, transition)
            return wait
        key = lc.build_request_key(self.uid, status.attempt or 1)
        answer = self.ctx.limiter.try_acquire(key)
        if isinstance(answer, Denial):
            await self.commit(
                status,
                lc.on_slot_denied(
                    status,
                    reason=Reason.RATE_LIMITED,
                    detail=self.denial_detail(answer),
                    retry_at=answer.retry_at_datetime,
                    ctx=ctx,
                ),
            )
            return max(answer.retry_after.total_seconds(), 0.05)
        self.waiting_for_slot = False
        # The finalizer goes on before the request key: from here on EAS work may exist.
        await self.ensure_finalizer()
        transition = lc.on_slot_granted(spec, status, ctx)
        await self.commit(status, transition)
        assert transition.status.build is not None
        self.fresh_key = transition.status.build.request_key
        return 0

    def denial_detail(self, denial: Denial) -> str:
        """Said in status: what blocks. Positions are logged, not written: a waiter's expected slot
        time stays put as the queue moves, so the status does not change on every start."""
        limiter = self.ctx.limiter
        self.log.debug(
            "start slot denied (%s): %d of %d waiting", denial.reason, denial.position, denial.waiters
        )
        if denial.reason is LimitReason.MAX_IN_FLIGHT:
            return f"{limiter.max_in_flight} builds in flight (the in-flight cap)"
        return f"{limiter.rate} build starts per {format_duration(timedelta(seconds=limiter.window))} used"

    # -- Building ----------------------------------------------------------------------------------

    async def start_build(
        self,
        client: ExpoClient,
        spec: PublishingBuildSpec,
        status: PublishingBuildStatus,
        credentials: ResolvedCredentials,
        now: datetime,
    ) -> float:
        assert status.build is not None and status.build.request_key is not None
        key = status.build.request_key
        if self.fresh_key != key:
            # Not written by this process just now: EAS may already have the build (crash recovery).
            found = await self.find_build(client, spec, status)
            if found is not None:
                self.ctx.limiter.restore([key], [(key, found.createdAt.timestamp())])
                await self.commit(
                    status,
                    lc.on_build_started(
                        spec, status, observation(found), adopted=True, ctx=self.ctx_for(self.ctx.clock())
                    ),
                )
                return self.poll_delay(found.status.value, found)
        self.fresh_key = None  # whatever happens next, a retry must look the build up first
        try:
            build = await self.create_build(client, spec, credentials, key)
        except ExpoError as exc:
            if exc.kind is ErrorKind.USER:
                transition = lc.on_build_rejected(
                    status, error_code=exc.error_code, message=exc.message, ctx=self.ctx_for(self.ctx.clock())
                )
                await self.commit(status, transition)
                return 0
            raise
        self.ctx.circuit.record_success()
        self.ctx.limiter.mark_started(key)
        await self.commit(
            status,
            lc.on_build_started(
                spec, status, observation(build), adopted=False, ctx=self.ctx_for(self.ctx.clock())
            ),
        )
        return self.poll_delay(build.status.value, build)

    async def create_build(
        self, client: ExpoClient, spec: PublishingBuildSpec, credentials: ResolvedCredentials, key: str
    ) -> Build:
        app = spec.app
        if spec.source.github is not None:
            return await client.start_github_build(
                app_id=app.project_id,
                platform=app.platform,
                profile=app.profile,
                git_ref=spec.source.github.ref,
                base_directory=spec.source.github.base_directory,
                request_key=key,
            )
        archive = spec.source.archive
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

    async def find_build(
        self, client: ExpoClient, spec: PublishingBuildSpec, status: PublishingBuildStatus
    ) -> Build | None:
        """The build this attempt already started, by the request key stamped in its message.

        A GitHub build is stamped just after it is created; one created by a process that died
        before stamping it is recognised by its ref and creation time, then stamped now.
        """
        assert status.build is not None
        key = status.build.request_key
        builds = await client.find_builds(
            app_id=spec.app.project_id, platform=spec.app.platform, profile=spec.app.profile
        )
        for build in builds:
            if build.message == key:
                return build
        github, requested = spec.source.github, status.build.requested_at
        if github is not None and requested is not None and key:
            for build in builds:
                if (
                    build.message is None
                    and build.gitRef == github.ref
                    and build.createdAt >= requested - ADOPT_CLOCK_SKEW
                ):
                    return await client.update_build_message(build.id, key)
        return None

    async def poll_build(
        self, client: ExpoClient, spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime
    ) -> float:
        assert status.build is not None and status.build.id is not None
        build = await client.get_build(status.build.id)
        self.ctx.circuit.record_success()
        transition = lc.on_build_observed(spec, status, observation(build), self.ctx_for(self.ctx.clock()))
        await self.commit(status, transition)
        if transition.status.phase is Phase.SUBMITTING and transition.status.submission:
            self.fresh_key = transition.status.submission.request_key  # written by us, not sent yet
        if transition.status.phase is not Phase.BUILDING:
            return 0
        return self.poll_delay(build.status.value, build)

    # -- Submitting --------------------------------------------------------------------------------

    async def start_submission(
        self,
        client: ExpoClient,
        spec: PublishingBuildSpec,
        status: PublishingBuildStatus,
        credentials: ResolvedCredentials,
        now: datetime,
    ) -> float:
        assert status.build is not None and status.build.id is not None and spec.submit is not None
        build_id = status.build.id
        key = status.submission.request_key if status.submission else None
        if self.fresh_key is None or self.fresh_key != key:
            # Idempotent: a live or finished submission of this build is adopted, never duplicated.
            live = [
                s
                for s in await client.build_submissions(build_id)
                if s.status.value not in ("ERRORED", "CANCELED")
            ]
            if live:
                return await self.submission_started(spec, status, live[0], adopted=True)
        self.fresh_key = None
        try:
            submission = await self.create_submission(client, spec, credentials, build_id)
        except ExpoError as exc:
            if exc.kind is ErrorKind.USER:
                ctx = self.ctx_for(self.ctx.clock())
                rejected = lc.on_submission_rejected(
                    spec, status, error_code=exc.error_code, message=exc.message, ctx=ctx
                )
                await self.commit(status, rejected)
                return 0
            raise
        self.ctx.circuit.record_success()
        return await self.submission_started(spec, status, submission, adopted=False)

    async def submission_started(
        self,
        spec: PublishingBuildSpec,
        status: PublishingBuildStatus,
        submission: Submission,
        *,
        adopted: bool,
    ) -> float:
        observed = submission_observation(submission)
        ctx = self.ctx_for(self.ctx.clock())
        await self.commit(status, lc.on_submission_started(spec, status, observed, adopted=adopted, ctx=ctx))
        return self.jitter(self.ctx.settings.poll_submission.total_seconds())

    async def create_submission(
        self, client: ExpoClient, spec: PublishingBuildSpec, credentials: ResolvedCredentials, build_id: str
    ) -> Submission:
        submit = spec.submit
        assert submit is not None
        if submit.ios is not None:
            assert credentials.asc is not None
            return await client.create_ios_submission(
                app_id=spec.app.project_id,
                build_id=build_id,
                asc_app_id=submit.ios.asc_app_id,
                api_key=credentials.asc,
                groups=list(submit.ios.testflight_groups),
                changelog=submit.ios.changelog,
            )
        android = submit.android
        assert android is not None and credentials.play_service_account_json is not None
        return await client.create_android_submission(
            app_id=spec.app.project_id,
            build_id=build_id,
            track=android.track,
            release_status=android.release_status.value,
            rollout=android.rollout,
            changes_not_sent_for_review=android.changes_not_sent_for_review,
            service_account_json=credentials.play_service_account_json.get_secret_value(),
            changelog=android.changelog,
        )

    async def poll_submission(
        self, client: ExpoClient, spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime
    ) -> float:
        assert status.submission is not None and status.submission.id is not None
        submission = await client.get_submission(status.submission.id)
        self.ctx.circuit.record_success()
        transition = lc.on_submission_observed(
            spec, status, submission_observation(submission), self.ctx_for(self.ctx.clock())
        )
        await self.commit(status, transition)
        return (
            0
            if transition.status.phase is not Phase.SUBMITTING
            else self.jitter(self.ctx.settings.poll_submission.total_seconds())
        )

    # -- cancellation, deletion ----------------------------------------------------------------

    async def cancel(
        self, client: ExpoClient, spec: PublishingBuildSpec, status: PublishingBuildStatus, now: datetime
    ) -> float:
        transition = lc.on_cancelling(spec, status, self.ctx_for(now))
        await self.commit(status, transition)
        status = transition.status
        cancelled = await self.cancel_on_eas(client, spec, status)
        ctx = self.ctx_for(self.ctx.clock())
        if cancelled is None:
            await self.commit(status, lc.on_nothing_to_cancel(spec, status, ctx))
            return 0
        if isinstance(cancelled, Build):
            await self.commit(status, lc.on_build_observed(spec, status, observation(cancelled), ctx))
        else:
            await self.commit(
                status, lc.on_submission_observed(spec, status, submission_observation(cancelled), ctx)
            )
        return 1.0  # PENDING_CANCEL → CANCELED is quick: look again soon

    async def cancel_on_eas(
        self, client: ExpoClient, spec: PublishingBuildSpec, status: PublishingBuildStatus
    ) -> Build | Submission | None:
        """Cancel this attempt's EAS work; None when nothing exists on EAS to cancel."""
        if status.phase is Phase.SUBMITTING and status.submission:
            if status.submission.id:
                submission = await client.get_submission(status.submission.id)
                if submission.status.value in ("FINISHED", "ERRORED", "CANCELED"):
                    return submission
                return await client.cancel_submission(status.submission.id)
            return None
        if status.build is None:
            return None
        build_id = status.build.id
        if build_id is None:
            found = await self.find_build(client, spec, status)
            if found is None:
                return None
            build_id = found.id
        current = await client.get_build(build_id)
        if current.status.value in ("FINISHED", "ERRORED", "CANCELED", "PENDING_CANCEL"):
            return current
        return await client.cancel_build(build_id)

    async def finalize(self, status: PublishingBuildStatus, now: datetime) -> float | None:
        """The object is being deleted: cancel its EAS work (bounded), then let it go."""
        finalizers = self.body.get("metadata", {}).get("finalizers") or []
        if FINALIZER not in finalizers:
            return None
        deleted_at = _parse_time(self.body["metadata"]["deletionTimestamp"]) or now
        if lc.eas_work_in_flight(status) and now - deleted_at < DELETE_CANCEL_TIMEOUT:
            try:
                spec = PublishingBuildSpec.model_validate(self.body.get("spec") or {})
                credentials = await self.ensure_credentials(spec, status, now)
                if credentials is not None:
                    client = self.ctx.expo(credentials.expo_token.get_secret_value())
                    result = await self.cancel_on_eas(client, spec, status)
                    if result is not None and result.status.value not in ("CANCELED", "FINISHED", "ERRORED"):
                        self.log.info(
                            "deleting: EAS %s %s is %s; waiting for it to end",
                            type(result).__name__.lower(),
                            result.id,
                            result.status.value,
                        )
                        return 2.0
                    self.post_event(
                        "Cancelled", "Deleted while in flight; the EAS work was cancelled", warning=False
                    )
            except ExpoError as exc:
                if exc.is_transient:
                    raise
                self.log.warning("deleting: could not cancel the EAS work (%s); releasing the resource", exc)
        elif lc.eas_work_in_flight(status):
            self.log.warning(
                "deleting: gave up cancelling the EAS work after %s; releasing the resource",
                DELETE_CANCEL_TIMEOUT,
            )
        if status.build and status.build.request_key:
            self.ctx.limiter.release_in_flight(status.build.request_key)
        await self.remove_finalizer()
        return None

    # -- manual retry, tidying -------------------------------------------------------------------

    async def manual_retry(self, status: PublishingBuildStatus, request: str, now: datetime) -> float:
        ctx = self.ctx_for(now)
        if status.phase in (Phase.FAILED, Phase.CANCELLED):
            await self.commit(status, lc.on_manual_retry(status, request, ctx))
            await self.set_result_label(None)
            return 0
        # Running or succeeded: note the request so the Event is posted once, and change nothing else.
        updated = status.model_copy(update={"retry_request": request})
        why = (
            "it already succeeded"
            if status.phase is Phase.SUCCEEDED
            else f"it is {status.phase or 'Pending'}"
        )
        await self.commit(
            status,
            lc.Transition(
                updated, (lc.Event("RetryIgnored", f"Retry {request!r} ignored: {why}", warning=True),)
            ),
        )
        return 0

    async def tidy(self, status: PublishingBuildStatus) -> None:
        """A finished resource: result label on and finalizer off, in one write."""
        ops = self.label_ops(lc.result_label(status.phase)) + self.finalizer_removal_ops()
        if ops:
            await self.patch_metadata(ops)

    # -- writes ------------------------------------------------------------------------------------

    async def commit(self, before: PublishingBuildStatus, transition: lc.Transition) -> None:
        """Patch the status if it changed, post the transition's Events, free the limiter slot."""
        old, new = before.to_json(), transition.status.to_json()
        patch = merge_patch(old, new)
        if patch:
            updated = await self.ctx.kube.patch_status(self.namespace, self.name, patch)
            self.update(updated, own=True)
            self.ctx.metrics.status_changed(self.body, before, transition.status)
        for event in transition.events:
            self.post_event(event.reason, event.message, warning=event.warning)
        if transition.release_slot and before.build and before.build.request_key:
            self.ctx.limiter.release_in_flight(before.build.request_key)
        if transition.status.phase in FINISHED_PHASES and before.phase is Phase.QUEUED:
            # Cancelled while waiting: give up its place in the limiter's queue at once.
            self.ctx.limiter.forget(lc.build_request_key(self.uid, before.attempt or 1))
        if transition.status.phase != before.phase:
            self.log.info(
                "phase %s -> %s: %s", before.phase or "-", transition.status.phase, transition.status.message
            )
        if transition.status.phase in FINISHED_PHASES and before.phase not in FINISHED_PHASES:
            await self.tidy(transition.status)
            if self.ctx.retention is not None:
                self.ctx.retention.trigger()  # history limits may now be exceeded
        elif before.phase in IN_FLIGHT_PHASES and transition.status.phase not in IN_FLIGHT_PHASES:
            await self.remove_finalizer()  # back to waiting (retry backoff): nothing on EAS to guard

    def post_event(self, reason: str, message: str, *, warning: bool) -> None:
        ref: kopf.RawBody = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
        }
        kopf.event(kopf.Body(ref), type="Warning" if warning else "Normal", reason=reason, message=message)

    async def ensure_finalizer(self) -> None:
        meta = self.body.get("metadata", {})
        finalizers = meta.get("finalizers")
        if finalizers and FINALIZER in finalizers:
            return
        ops: list[dict[str, Any]]
        if finalizers:
            ops = [{"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}]
        else:
            ops = [{"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}]
        rv = meta.get("resourceVersion")
        guarded = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv}, *ops] if rv else ops
        self.update(await self.ctx.kube.patch_metadata(self.namespace, self.name, guarded), own=True)

    async def remove_finalizer(self) -> None:
        ops = self.finalizer_removal_ops()
        if ops:
            await self.patch_metadata(ops)

    async def set_result_label(self, value: str | None) -> None:
        ops = self.label_ops(value)
        if ops:
            await self.patch_metadata(ops)

    def finalizer_removal_ops(self) -> list[dict[str, Any]]:
        finalizers = list(self.body.get("metadata", {}).get("finalizers") or [])
        if FINALIZER not in finalizers:
            return []
        path = f"/metadata/finalizers/{finalizers.index(FINALIZER)}"
        return [{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]

    def label_ops(self, value: str | None) -> list[dict[str, Any]]:
        labels = self.body.get("metadata", {}).get("labels") or {}
        if labels.get(RESULT_LABEL) == value:
            return []
        path = "/metadata/labels/" + RESULT_LABEL.replace("~", "~0").replace("/", "~1")
        if value is None:
            return [{"op": "remove", "path": path}]
        if labels:
            return [{"op": "add", "path": path, "value": value}]
        return [{"op": "add", "path": "/metadata/labels", "value": {RESULT_LABEL: value}}]

    async def patch_metadata(self, ops: list[dict[str, Any]]) -> None:
        try:
            updated = await self.ctx.kube.patch_metadata(self.namespace, self.name, ops)
        except KubeError as exc:
            if exc.status == 404:
                return  # already gone
            raise
        self.update(updated, own=True)

    # -- timing ------------------------------------------------------------------------------------

    def poll_delay(self, eas_status: str, build: Build | None = None) -> float:
        """Adaptive: by queue position / estimated wait while queued, POLL_BUILD while building."""
        base = self.ctx.settings.poll_build.total_seconds()
        if eas_status in lc.BUILD_WAITING and build is not None:
            if build.estimatedWaitTimeLeftSeconds:
                return self.jitter(min(max(build.estimatedWaitTimeLeftSeconds / 2, base / 2), base * 10))
            if build.queuePosition:
                return self.jitter(min(base * (1 + build.queuePosition / 5), base * 10))
        return self.jitter(base)

    @staticmethod
    def jitter(seconds: float) -> float:
        """±10%: many builds started together do not poll Expo in lockstep."""
        return seconds * random.uniform(0.9, 1.1)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`; empty when they are equal."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch


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


def submission_observation(submission: Submission) -> lc.SubmissionObservation:
    return lc.SubmissionObservation(
        id=submission.id,
        status=submission.status.value,
        url=submission.url,
        error_code=submission.error.errorCode if submission.error else None,
        error_message=submission.error.message if submission.error else None,
        created_at=submission.createdAt,
        completed_at=submission.completedAt,
    )
