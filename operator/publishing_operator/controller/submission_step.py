"""Submitting: hand the finished build to the store once per attempt (or adopt a live or finished
submission of it), then follow it."""

from __future__ import annotations

from publishing_operator import lifecycle as lc
from publishing_operator.api import Phase
from publishing_operator.controller.build_step import confirm_poll, jitter
from publishing_operator.controller.claims import ensure_claim_current, window_closes
from publishing_operator.controller.step_context import StepContext
from publishing_operator.expo.errors import ErrorKind, ExpoError
from publishing_operator.expo.models import Submission
from publishing_operator.lifecycle.eas import SUBMISSION_DEAD


async def claim_submission(sc: StepContext) -> float:
    """A submission retry is due: claim a new request key (a won write), then create right away."""
    attempt = sc.status.attempt or 1
    transition = lc.on_claimed(sc.status, "submission", f"submission attempt {attempt}", sc.lc_ctx())
    assert transition.status.submission is not None
    sc.worker.fresh_key = transition.status.submission.request_key  # ours even if the answer is lost
    await sc.commit(transition)
    return 0


async def start_submission(sc: StepContext) -> float:
    """Create the submission once per request key: only right after winning its claim. Anything
    else first adopts a live or finished submission of the build; with none, it waits until no
    create for the key can still arrive, then claims a new key."""
    assert sc.status.build is not None and sc.status.build.id is not None and sc.spec.submit is not None
    submission_status = sc.status.submission
    assert submission_status is not None and submission_status.request_key is not None
    build_id = sc.status.build.id
    if not sc.holds_unsent_claim("submission"):
        live = [
            s for s in await sc.client.build_submissions(build_id) if s.status.value not in SUBMISSION_DEAD
        ]
        if live:
            return await _started(sc, live[0], adopted=True)
        closes = window_closes(sc, submission_status.requested_at)
        if sc.now() < closes:
            why = "the submission request's answer never arrived"
            await sc.commit(lc.on_confirming(sc.status, "submission", why, closes, sc.lc_ctx()))
            return confirm_poll(sc, closes)
        return await claim_submission(sc)
    try:
        await ensure_claim_current(sc, "submission")
        submission = await create_submission(sc, build_id)
    except ExpoError as exc:
        if exc.ambiguous:
            sc.worker.fresh_key = None  # Expo may have it: look before creating again
        if exc.kind is ErrorKind.USER:
            await sc.commit(
                lc.on_submission_rejected(
                    sc.spec, sc.status, error_code=exc.error_code, message=exc.message, ctx=sc.lc_ctx()
                )
            )
            return 0
        raise
    sc.worker.fresh_key = None
    sc.ctx.circuit.record_success()
    return await _started(sc, submission, adopted=False)


async def _started(sc: StepContext, submission: Submission, *, adopted: bool) -> float:
    observed = observation(submission)
    await sc.commit(lc.on_submission_started(sc.spec, sc.status, observed, adopted=adopted, ctx=sc.lc_ctx()))
    return jitter(sc.ctx.settings.poll_submission.total_seconds())


async def create_submission(sc: StepContext, build_id: str) -> Submission:
    submit, credentials, client = sc.spec.submit, sc.credentials, sc.client
    assert submit is not None and credentials is not None
    if submit.ios is not None:
        assert credentials.asc is not None
        return await client.create_ios_submission(
            app_id=sc.spec.app.project_id,
            build_id=build_id,
            asc_app_id=submit.ios.asc_app_id,
            api_key=credentials.asc,
            groups=list(submit.ios.testflight_groups),
            changelog=submit.ios.changelog,
        )
    android = submit.android
    assert android is not None and credentials.play_service_account_json is not None
    return await client.create_android_submission(
        app_id=sc.spec.app.project_id,
        build_id=build_id,
        track=android.track,
        release_status=android.release_status.value,
        rollout=android.rollout,
        changes_not_sent_for_review=android.changes_not_sent_for_review,
        service_account_json=credentials.play_service_account_json.get_secret_value(),
        changelog=android.changelog,
    )


async def poll_submission(sc: StepContext) -> float:
    assert sc.status.submission is not None and sc.status.submission.id is not None
    submission = await sc.client.get_submission(sc.status.submission.id)
    sc.ctx.circuit.record_success()
    transition = lc.on_submission_observed(sc.spec, sc.status, observation(submission), sc.lc_ctx())
    await sc.commit(transition)
    if transition.status.phase is not Phase.SUBMITTING:
        return 0
    return jitter(sc.ctx.settings.poll_submission.total_seconds())


def observation(submission: Submission) -> lc.SubmissionObservation:
    return lc.SubmissionObservation(
        id=submission.id,
        status=submission.status.value,
        url=submission.url,
        error_code=submission.error.errorCode if submission.error else None,
        error_message=submission.error.message if submission.error else None,
        created_at=submission.createdAt,
        completed_at=submission.completedAt,
    )
