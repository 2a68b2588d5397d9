"""Async client for Expo's GraphQL API (the subset the operator needs), with typed results.

- Every request has a timeout; every failure becomes an `ExpoError` (see errors.py).
- Idempotent operations are retried inside the client on transient errors: bounded attempts, capped
  exponential backoff with jitter, `Retry-After` honoured. Creates (builds, submissions) are never
  retried here: when their outcome is unknown the error says `ambiguous=True` and the caller looks
  the result up by its request key.
- One DEBUG log line per request (logger "publishing_operator.expo"): operation, duration, outcome,
  request id. The token lives only in the Authorization header; it is in no repr, log or error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx

from publishing_operator.api import Platform, Workflow
from publishing_operator.egress import ArchivePolicy
from publishing_operator.expo import archive, operations
from publishing_operator.expo.batching import BuildPoller
from publishing_operator.expo.errors import (
    ErrorKind,
    ExpoError,
    make_error,
)
from publishing_operator.expo.models import (
    Actor,
    AscApiKey,
    BackgroundJobReceipt,
    BackgroundJobState,
    Build,
    SigningMaterial,
    Submission,
    UploadSession,
)
from publishing_operator.expo.operations import Operation
from publishing_operator.expo.transport import (
    Clock,
    GraphQLTransport,
    RequestHook,
    RetryPolicy,
    Sleep,
)
from publishing_operator.guarded_http import guarded_client
from publishing_operator.http import PooledHttp, as_pooled

logger = logging.getLogger("publishing_operator.expo")

MESSAGE_LIMIT = 1024  # Build.message limit enforced by eas-cli (API.md 2.3)


def _expo_release_status(value: str) -> str:
    # Accept the CRD's camelCase ("inProgress") and Expo's enum ("IN_PROGRESS").
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", value).upper()


class ExpoClient:
    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http: PooledHttp | httpx.AsyncClient | None = None,
        sleep: Sleep | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        on_request: RequestHook | None = None,
        upload_timeout: float = 600.0,
        batch_linger: float = 0.0,
        archive_policy: ArchivePolicy | None = None,
    ) -> None:
        self._actor_id: str | None = None
        self._poller = BuildPoller(self.get_builds, self.get_build, linger=batch_linger)
        self._own_http = http is None
        self._http = as_pooled(http) if http is not None else PooledHttp(timeout=timeout)
        self._transport = GraphQLTransport(
            api_url,
            token,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            http=self._http,
            sleep=sleep if sleep is not None else asyncio.sleep,
            clock=clock,
            rng=rng or random.Random(),
            on_request=on_request,
        )
        t = self._transport
        self._execute, self._model, self._dig, self._report = t.execute, t.model, t.dig, t.report
        self._items = t.items
        self._retry, self._sleep, self._clock, self._rng = t.retry, t.sleep, t.clock, t.rng
        self._upload_timeout = upload_timeout
        self._archive_policy = archive_policy or ArchivePolicy()  # the secure defaults

    def __repr__(self) -> str:
        return f"ExpoClient(api_url={self._transport.url!r})"

    __str__ = __repr__

    @property
    def api_url(self) -> str:
        return self._transport.url

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> ExpoClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- operations

    async def whoami(self) -> Actor:
        """The actor the token belongs to; raises an AUTH error for a bad token."""
        data = await self._execute(operations.ME_ACTOR)
        if data.get("meActor") is None:
            raise make_error(ErrorKind.AUTH, "the Expo token belongs to no actor", operation="MeActor")
        actor = self._model(operations.ME_ACTOR, Actor, data, "meActor")
        self._actor_id = actor.id
        return actor

    async def actor_id(self) -> str:
        """The id of the token's actor (asked once): builds it initiated are the operator's own."""
        if self._actor_id is None:
            await self.whoami()
        assert self._actor_id is not None
        return self._actor_id

    async def get_build(self, build_id: str) -> Build:
        data = await self._execute(operations.BUILD_BY_ID, {"buildId": build_id})
        return self._model(operations.BUILD_BY_ID, Build, data, "builds", "byId")

    async def get_builds(self, build_ids: Sequence[str]) -> dict[str, Build | ExpoError]:
        """Several builds in one request; a build Expo errs on gets its own error."""
        op = operations.builds_by_id(len(build_ids))
        variables = {f"b{i}": build_id for i, build_id in enumerate(build_ids)}
        data, errors = await self._transport.execute_partial(op, variables)
        found: dict[str, Build | ExpoError] = {}
        for i, build_id in enumerate(build_ids):
            alias = f"b{i}"
            if alias in errors:
                found[build_id] = errors[alias]
                continue
            try:
                found[build_id] = self._model(op, Build, data, alias, "byId")
            except ExpoError as exc:
                found[build_id] = exc
        return found

    async def poll_build(self, build_id: str) -> Build:
        """`get_build`, coalesced with the other builds this token follows (batching.py)."""
        return await self._poller.get(build_id)

    async def cancel_build(self, build_id: str) -> Build:
        data = await self._execute(operations.CANCEL_BUILD, {"buildId": build_id})
        return self._model(operations.CANCEL_BUILD, Build, data, "build", "cancelBuild")

    async def find_builds(
        self, *, app_id: str, platform: Platform, profile: str | None, limit: int = 50
    ) -> list[Build]:
        """Recent builds of the app for `platform` (and `profile`), newest first.

        Expo does not document the order of `App.builds`, so the page is sorted here by createdAt.
        """
        build_filter: dict[str, Any] = {"platform": platform.value.upper()}
        if profile is not None:
            build_filter["buildProfile"] = profile
        data = await self._execute(
            operations.APP_BUILDS, {"appId": app_id, "offset": 0, "limit": limit, "filter": build_filter}
        )
        builds = [
            self._model(operations.APP_BUILDS, Build, item)
            for item in self._items(operations.APP_BUILDS, data, "app", "byId", "builds")
        ]
        return sorted(builds, key=lambda build: build.createdAt, reverse=True)

    async def update_build_message(self, build_id: str, message: str) -> Build:
        data = await self._execute(
            operations.UPDATE_BUILD_METADATA, {"buildId": build_id, "metadata": {"message": message}}
        )
        return self._model(operations.UPDATE_BUILD_METADATA, Build, data, "build", "updateBuildMetadata")

    async def create_github_build(
        self,
        *,
        app_id: str,
        platform: Platform,
        profile: str,
        git_ref: str,
        base_directory: str | None,
    ) -> str:
        """Ask Expo to build `git_ref` of the app's linked GitHub repository; returns the background
        job receipt id (`github_build_from_receipt` later names the build). Never retried here: an
        ambiguous failure means Expo may have accepted the request."""
        build_input: dict[str, Any] = {
            "appId": app_id,
            "platform": platform.value.upper(),
            "buildProfile": profile,
            "gitRef": git_ref,
        }
        if base_directory:
            build_input["baseDirectory"] = base_directory
        op = operations.CREATE_GITHUB_BUILD
        data = await self._execute(op, {"buildInput": build_input})
        receipt_id = self._dig(op, data, "githubApp", "createGitHubBuild", "id")
        if not isinstance(receipt_id, str) or not receipt_id or len(receipt_id) > 256:
            # Expo accepted something: the build may exist, so the outcome is unknown.
            raise make_error(
                ErrorKind.UNKNOWN, "Expo answered without a receipt id", operation=op.name, ambiguous=True
            )
        return receipt_id

    async def github_build_from_receipt(self, receipt_id: str) -> str | None:
        """The build a GitHub build request created, once Expo has: its id; None while the request is
        still being processed. A request Expo gave up on is a USER error (the project's fault).

        Relies on the receipt's `resultId` being the build id (API.md 2.5, [I/U])."""
        op = operations.BACKGROUND_JOB_RECEIPT
        data = await self._execute(op, {"id": receipt_id})
        receipt = self._model(op, BackgroundJobReceipt, data, "backgroundJobReceipt", "byId")
        if receipt.state is BackgroundJobState.FAILURE and not receipt.willRetry:
            raise make_error(
                ErrorKind.USER,
                f"Expo could not start the GitHub build: {receipt.errorMessage or 'no reason given'} "
                "(is the Expo GitHub app installed and the repository linked to the project?)",
                operation=operations.CREATE_GITHUB_BUILD.name,
                error_code=receipt.errorCode,
            )
        if receipt.state is not BackgroundJobState.SUCCESS:
            return None
        if receipt.resultId is None:
            raise make_error(
                ErrorKind.UNKNOWN,
                "Expo finished the GitHub build request without naming the build",
                operation=operations.CREATE_GITHUB_BUILD.name,
            )
        return receipt.resultId

    async def create_upload_session(self) -> UploadSession:
        op = operations.CREATE_UPLOAD_SESSION
        data = await self._execute(
            op, {"type": "EAS_BUILD_GCS_PROJECT_SOURCES", "filename": "project.tar.gz"}
        )
        return self._model(op, UploadSession, data, "uploadSession", "createUploadSession")

    async def upload_archive(self, *, url: str, sha256: str | None, max_bytes: int = 2 * 1024**3) -> str:
        """Download the project tarball from `url`, check it, upload it to Expo; return its bucket key."""
        # Separate HTTP clients: the Expo token must never travel to the archive host, and the
        # tenant's URL may only reach what the archive source policy allows (guarded_http.py).
        async with guarded_client(self._archive_policy) as fetch:
            downloaded = await archive.download_archive(
                fetch,
                url,
                policy=self._archive_policy,
                sha256=sha256,
                max_bytes=max_bytes,
                timeout=self._upload_timeout,
            )
        try:
            async with httpx.AsyncClient() as plain:
                attempt = 0
                while True:
                    attempt += 1
                    session = await self.create_upload_session()
                    started = self._clock()
                    try:
                        await archive.put_archive(plain, session, downloaded, timeout=self._upload_timeout)
                    except ExpoError as exc:
                        self._report_upload(started, exc.kind.value.lower(), exc.http_status, attempt)
                        if not exc.is_transient or attempt >= self._retry.attempts:
                            raise
                        await self._sleep(self._retry.backoff(attempt, self._rng))
                        continue
                    self._report_upload(started, "ok", 200, attempt)
                    return session.bucketKey
        finally:
            downloaded.close()

    def _report_upload(self, started: float, outcome: str, status: int | None, attempt: int) -> None:
        op = Operation(archive.UPLOAD, "", idempotent=True)
        self._report(op, started, outcome, status, None, attempt, None)

    async def create_archive_build(
        self,
        *,
        app_id: str,
        platform: Platform,
        profile: str,
        bucket_key: str,
        project_root_directory: str,
        workflow: Workflow,
        build_version: str | None,
        signing: SigningMaterial | None,
        request_key: str,
        resource_class: str | None = None,
    ) -> Build:
        """Create a build from an uploaded archive; `request_key` goes into metadata.message."""
        _check_key(request_key)
        expo_workflow = workflow.value.upper()
        job: dict[str, Any] = {
            "type": expo_workflow,
            "projectArchive": {"type": "GCS", "bucketKey": bucket_key},
            "projectRootDirectory": project_root_directory or ".",
            "buildProfile": profile,
            "triggeredBy": "EAS_CLI",
            "mode": "BUILD",
        }
        if build_version:
            job["version"] = (
                {"buildNumber": build_version} if platform is Platform.IOS else {"versionCode": build_version}
            )
        if signing is not None:
            job["secrets"] = signing.job_secrets(platform)
        metadata = {
            "message": request_key,
            "buildProfile": profile,
            "workflow": expo_workflow,
            "credentialsSource": "LOCAL" if signing is not None else "REMOTE",
        }
        if build_version:
            metadata["appBuildVersion"] = build_version
        default_class = "IOS_DEFAULT" if platform is Platform.IOS else "ANDROID_DEFAULT"
        variables = {
            "appId": app_id,
            "job": job,
            "metadata": metadata,
            "buildParams": {"resourceClass": resource_class or default_class},
        }
        op, field = (
            (operations.CREATE_IOS_BUILD, "createIosBuild")
            if platform is Platform.IOS
            else (operations.CREATE_ANDROID_BUILD, "createAndroidBuild")
        )
        data = await self._execute(op, variables)
        created = self._dig(op, data, "build", field)
        deprecation = created.get("deprecationInfo") if isinstance(created, dict) else None
        if isinstance(deprecation, dict):
            logger.warning(
                "Expo deprecation notice (%s): %s", deprecation.get("type"), deprecation.get("message")
            )
        return self._model(op, Build, data, "build", field, "build")

    async def create_ios_submission(
        self,
        *,
        app_id: str,
        build_id: str,
        asc_app_id: str,
        api_key: AscApiKey,
        groups: list[str],
        changelog: str | None,
    ) -> Submission:
        config: dict[str, Any] = {
            "ascAppIdentifier": asc_app_id,
            "ascApiKey": {
                "keyP8": api_key.key_p8.get_secret_value(),
                "keyIdentifier": api_key.key_id,
                "issuerIdentifier": api_key.issuer_id,
            },
        }
        if groups:
            config["groups"] = list(groups)
        if changelog:
            config["changelog"] = changelog
        op = operations.CREATE_IOS_SUBMISSION
        data = await self._execute(
            op, {"input": {"appId": app_id, "submittedBuildId": build_id, "config": config}}
        )
        return self._model(op, Submission, data, "submission", "createIosSubmission", "submission")

    async def create_android_submission(
        self,
        *,
        app_id: str,
        build_id: str,
        track: str,
        release_status: str,
        rollout: float | None,
        changes_not_sent_for_review: bool,
        service_account_json: str,
        changelog: str | None,
    ) -> Submission:
        config: dict[str, Any] = {
            "track": track,
            "releaseStatus": _expo_release_status(release_status),
            "changesNotSentForReview": changes_not_sent_for_review,
            "googleServiceAccountKeyJson": service_account_json,
        }
        if rollout is not None:
            config["rollout"] = rollout
        if changelog:
            config["changelog"] = changelog
        op = operations.CREATE_ANDROID_SUBMISSION
        data = await self._execute(
            op, {"input": {"appId": app_id, "submittedBuildId": build_id, "config": config}}
        )
        return self._model(op, Submission, data, "submission", "createAndroidSubmission", "submission")

    async def get_submission(self, submission_id: str) -> Submission:
        op = operations.SUBMISSION_BY_ID
        data = await self._execute(op, {"submissionId": submission_id})
        return self._model(op, Submission, data, "submissions", "byId")

    async def cancel_submission(self, submission_id: str) -> Submission:
        op = operations.CANCEL_SUBMISSION
        data = await self._execute(op, {"submissionId": submission_id})
        return self._model(op, Submission, data, "submission", "cancelSubmission")

    async def build_submissions(self, build_id: str) -> list[Submission]:
        op = operations.BUILD_SUBMISSIONS
        data = await self._execute(op, {"buildId": build_id})
        listed = self._items(op, data, "builds", "byId", "submissions")
        return [self._model(op, Submission, item) for item in listed]


def _check_key(request_key: str) -> None:
    if not request_key or len(request_key) > MESSAGE_LIMIT:
        raise ValueError(f"request_key must be 1..{MESSAGE_LIMIT} characters")
