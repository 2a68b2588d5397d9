"""Pending: the resource's Secrets read and validated before any money is spent; and what happens
when Expo refuses the token later."""

from __future__ import annotations

from datetime import timedelta

from publishing_operator import backoff
from publishing_operator import lifecycle as lc
from publishing_operator.api import COND_CREDENTIALS, Reason
from publishing_operator.controller.ledger import spec_digest
from publishing_operator.controller.slot_step import ask_for_slot
from publishing_operator.controller.step_context import Handler, StepContext
from publishing_operator.controller.worker import Worker
from publishing_operator.credentials import CredentialCheck, ResolvedCredentials
from publishing_operator.expo.errors import ErrorKind, ExpoError
from publishing_operator.redaction import SCRUBBER


async def check_credentials(sc: StepContext) -> float:
    if await _already_released(sc):
        return 0
    check = await sc.ctx.credentials.resolve(sc.worker.namespace, sc.spec)
    if check.ok and check.credentials is not None and await _token_still_refused(sc, check.credentials):
        return recheck_after(sc.worker)
    if check.ok:
        remember(sc.worker, check.credentials)
        sc.worker.credential_failures = 0
        ready = lc.on_credentials(
            sc.status, ok=True, reason=check.reason, message=check.message, ctx=sc.lc_ctx()
        )
        if (
            lc.next_step(sc.spec, ready.status, sc.now(), generation=sc.lc_ctx().generation)
            is not lc.Step.ACQUIRE_SLOT
        ):
            await sc.commit(ready)
            return 0
        # Queued now: ask for the start slot at once, and write both in one (a granted slot is the
        # claim of the build's request key, written before any create as always).
        slot = ask_for_slot(sc, ready.status)
        sc.worker.waiting_for_slot = not slot.granted
        await sc.commit(lc.then(ready, slot.transition))
        return slot.delay
    delay = recheck_after(sc.worker)
    await _report_bad_credentials(sc, check, delay)
    return delay


async def ensure_credentials(sc: StepContext) -> ResolvedCredentials | None:
    """Credentials for an in-flight step: cached in memory, re-read after a restart."""
    worker = sc.worker
    if worker.credentials is None:
        check = await sc.ctx.credentials.resolve(worker.namespace, sc.spec)
        if not check.ok:
            await _report_bad_credentials(
                sc, check, recheck_delay(worker.credential_failures + 1).total_seconds()
            )
            return None
        remember(worker, check.credentials)
    return worker.credentials


async def unless_unauthorized(sc: StepContext, handler: Handler) -> float | None:
    """Run an Expo step; a 401 sends the resource back to waiting for a working token."""
    try:
        return await handler(sc)
    except ExpoError as exc:
        if exc.kind is not ErrorKind.AUTH:
            raise
    sc.worker.credentials = None
    await sc.commit(
        lc.on_unauthorized(
            sc.status, sc.spec.expo.token_secret_ref.name, sc.lc_ctx(), nothing_sent=_holds_unsent_claim(sc)
        )
    )
    sc.worker.fresh_key = None
    return recheck_after(sc.worker)


def _holds_unsent_claim(sc: StepContext) -> bool:
    """This process claimed the current request key and knows no create was sent for it (a create
    refused outright keeps the claim fresh; an ambiguous one does not)."""
    build = sc.status.build
    if build is not None and build.request_key == sc.worker.fresh_key:
        return sc.holds_unsent_claim("build") and not build.id and not build.receipt_id
    submission = sc.status.submission
    return sc.holds_unsent_claim("submission") and submission is not None and not submission.id


RECHECK_INITIAL = timedelta(seconds=5)
RECHECK_MAX = timedelta(minutes=5)


def recheck_delay(failures: int) -> timedelta:
    """Wait before re-checking credentials after `failures` consecutive failed checks:
    5 s, 10 s, 20 s, ... capped at 5 min (0 or less → 5 s)."""
    seconds = backoff.exponential(
        failures, initial=RECHECK_INITIAL.total_seconds(), cap=RECHECK_MAX.total_seconds()
    )
    return timedelta(seconds=seconds)


async def _already_released(sc: StepContext) -> bool:
    """A brand-new resource that repeats a release the ledger holds: Succeeded, nothing built."""
    status, ledger = sc.status, sc.ctx.ledger
    if ledger is None or status.phase is not None or status.request_count or status.retry_request:
        return False
    release = await ledger.lookup(sc.worker.namespace, sc.worker.name)
    if release is None or release.uid == sc.worker.uid:
        return False
    if release.spec_digest != spec_digest(sc.worker.body.get("spec") or {}):
        return False  # same name, another release: build it
    await sc.commit(
        lc.on_already_released(
            status, build_id=release.build_id, completed_at=release.completed_at, ctx=sc.lc_ctx()
        )
    )
    return True


def recheck_after(worker: Worker) -> float:
    worker.credential_failures += 1
    return recheck_delay(worker.credential_failures).total_seconds()


def remember(worker: Worker, credentials: ResolvedCredentials | None) -> None:
    """Cache the resolved credentials, and keep their values out of every log line."""
    worker.credentials = credentials
    if credentials is not None:
        SCRUBBER.register(worker.uid, credentials.secret_values())


async def _token_still_refused(sc: StepContext, credentials: ResolvedCredentials) -> bool:
    """After Expo refused the token, ask Expo (meActor) before spending a start slot again."""
    before = sc.status.condition(COND_CREDENTIALS)
    if before is None or before.reason != Reason.UNAUTHORIZED:
        return False
    try:
        await sc.ctx.expo.for_token(credentials.expo_token.get_secret_value()).whoami()
    except ExpoError as exc:
        if exc.kind is ErrorKind.AUTH:
            sc.worker.log.info("the Expo token is still refused; checking again later")
            return True
        raise
    return False


async def _report_bad_credentials(sc: StepContext, check: CredentialCheck, delay: float) -> None:
    sc.worker.log.warning("credentials not ready: %s", check.message)
    now = sc.now()
    transition = lc.on_credentials(
        sc.status,
        ok=False,
        reason=check.reason,
        message=check.message,
        ctx=sc.lc_ctx(now),
        recheck_at=now + timedelta(seconds=delay),
    )
    await sc.commit(transition)
