"""The simulator's world: apps, uploads, builds, submissions, receipts, configuration and faults.

Time is lazy: nothing runs in the background. Each entity stores the instants at which it changes
state, and every read first calls `advance()`, which moves everything to where it would be now.
`time_scale` compresses the configured (Expo-realistic) durations: 0.01 turns a 600 s build into
6 s. Reported timestamps and waits are real (wall clock, scaled seconds), so a client polling the
simulator behaves as it would against Expo in fast-forward. `advance_clock()` jumps time forward.

All public methods take the lock: the HTTP server and in-process test code (possibly in another
thread) share one state.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TERMINAL_BUILD = frozenset({"FINISHED", "ERRORED", "CANCELED"})
TERMINAL_SUBMISSION = frozenset({"FINISHED", "ERRORED", "CANCELED"})
GIT_HASH = re.compile(r"^[0-9a-f]{40}$")


ROBOT_ACTOR_ID = "robot-simulator"  # the actor of every token (meActor)


class SimulatorConfig(BaseModel):
    """Everything `POST /__simulator/config` can change. Durations are in Expo (nominal) seconds."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    time_scale: float = Field(1.0, gt=0, description="real seconds per simulated second")
    new_seconds: float = Field(2.0, ge=0, description="NEW -> IN_QUEUE")
    queue_seconds: float = Field(30.0, ge=0, description="IN_QUEUE -> IN_PROGRESS")
    build_seconds: float = Field(600.0, ge=0, description="IN_PROGRESS -> FINISHED/ERRORED")
    cancel_seconds: float = Field(3.0, ge=0, description="PENDING_CANCEL -> CANCELED")
    submit_queue_seconds: float = Field(10.0, ge=0, description="submission IN_QUEUE -> IN_PROGRESS")
    submit_seconds: float = Field(60.0, ge=0, description="submission IN_PROGRESS -> FINISHED/ERRORED")
    receipt_seconds: float = Field(2.0, ge=0, description="createGitHubBuild receipt QUEUED -> SUCCESS")
    max_build_time_seconds: int = Field(7200, ge=1, description="Build.maxBuildTimeSeconds")
    # Facts API.md marks unconfirmed [U]: one knob each instead of one invented answer.
    accept_url_sources: bool = Field(True, description="createXBuild accepts projectArchive {type: URL}")
    accept_git_sources: bool = Field(False, description="createXBuild accepts projectArchive {type: GIT}")
    github_builds_allowed: bool = Field(True, description="the token may call githubApp.createGitHubBuild")
    receipt_result_id: Literal["build_id", "none"] = Field(
        "build_id", description="what a SUCCESS receipt's resultId holds"
    )
    graphql_error_status: int = Field(200, description="HTTP status of responses that carry GraphQL errors")
    not_found_error_code: str | None = Field("ENTITY_NOT_FOUND", description="errorCode for unknown ids")
    max_list_limit: int = Field(50, ge=1, description="largest page App.builds/App.submissions serve")
    list_limit_exceeded: Literal["clamp", "error"] = "clamp"
    builds_order: Literal["newest_first", "oldest_first"] = "newest_first"
    enforce_metadata_limits: bool = Field(True, description="message <= 1024 chars, gitCommitHash 40 hex")
    accept_get_queries: bool = Field(True, description="queries may be sent as GET ?query=")
    auto_create_apps: bool = Field(True, description="any projectId is an existing app")
    owner_account: str = Field("simulator", description="account owning auto-created apps")


class CallFault(BaseModel):
    """Misbehave on the next `count` calls matching `operation`.

    `operation` is a GraphQL field name at the first or second level (`build`, `createIosBuild`,
    `byId`), an operationName (`BuildById`), `upload` (the signed-upload PUT) or `*`.
    """

    model_config = ConfigDict(extra="forbid")

    operation: str = "*"
    count: int = Field(1, ge=1)
    http_status: int | None = Field(None, ge=400, le=599)
    retry_after: float | None = Field(None, ge=0)
    error_code: str | None = None
    error_type: str | None = None
    is_transient: bool | None = None
    message: str | None = None
    latency: float = Field(0.0, ge=0, description="real seconds to wait before answering")
    drop: Literal["before", "after"] | None = Field(
        None, description="close the connection without answering, before or after applying the call"
    )
    # A hostile Expo: the call is applied, then its answer is changed.
    rewrite: dict[str, Any] | None = Field(
        None, description="dotted paths in the answer's data set to values, e.g. {'builds.byId.status': 'X'}"
    )
    body: str | None = Field(None, description="answer with this raw body instead (http_status, else 200)")


class OutcomeFault(BaseModel):
    """The next `count` builds / submissions / GitHub receipts created end ERRORED (or FAILURE)."""

    model_config = ConfigDict(extra="forbid")

    target: Literal["build", "submission", "receipt"]
    count: int = Field(1, ge=1)
    error_code: str = "UNKNOWN_ERROR"
    message: str = "simulated failure"
    platform: Literal["IOS", "ANDROID"] | None = None


class FaultsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: list[CallFault] = Field(default_factory=list)
    outcomes: list[OutcomeFault] = Field(default_factory=list)


class ApiError(Exception):
    """A GraphQL error in Expo's shape (message + extensions.errorCode/errorType/isTransient)."""

    def __init__(self, message: str, *, code: str | None, error_type: str | None = "USER") -> None:
        super().__init__(message)
        self.extensions: dict[str, Any] = {"isTransient": False}
        if code is not None:
            self.extensions["errorCode"] = code
        if error_type is not None:
            self.extensions["errorType"] = error_type


def validation_error(message: str) -> ApiError:
    return ApiError(message, code="VALIDATION_ERROR")


def fingerprint(value: Any) -> str:
    """sha256 prefix of secret material, so tests can tell which key was sent without seeing it."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class App:
    id: str
    slug: str
    owner: str


@dataclass
class Upload:
    bucket_key: str
    type: str
    signature: str
    content_type: str
    size: int | None = None
    md5_base64: str | None = None
    sha256: str | None = None


@dataclass
class Build:
    id: str
    app_id: str
    platform: str
    origin: Literal["archive", "github"]
    created: float
    t_enqueue: float
    t_start: float
    t_end: float
    metadata: dict[str, Any]
    job: dict[str, Any] = field(default_factory=dict)
    resource_class: str | None = None
    git_ref: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    credentials_fingerprint: str | None = None
    planned_error: tuple[str, str] | None = None
    status: str = "NEW"
    cancel_requested: float | None = None
    completed: float | None = None
    updated: float = 0.0
    initial_queue_position: int | None = None
    project_root_directory: str | None = None
    initiating_actor: str = ROBOT_ACTOR_ID  # who asked for it: the token's robot, or someone else

    @property
    def profile(self) -> str | None:
        return self.metadata.get("buildProfile") or self.job.get("buildProfile")


@dataclass
class Submission:
    id: str
    app_id: str
    platform: str
    build_id: str | None
    created: float
    config: dict[str, Any]
    credentials_fingerprint: str | None
    planned_error: tuple[str, str] | None = None
    status: str = "IN_QUEUE"
    canceled_at: float | None = None
    completed: float | None = None
    updated: float = 0.0
    error: tuple[str, str] | None = None


@dataclass
class Receipt:
    id: str
    app_id: str
    created: float
    t_done: float
    build_input: dict[str, Any]
    planned_error: tuple[str, str] | None = None
    state: str = "QUEUED"
    result_id: str | None = None
    error: tuple[str, str] | None = None
    updated: float = 0.0


@dataclass
class CallRecord:
    time: float
    operation_name: str | None
    fields: list[str]
    http_status: int
    fault: str | None = None
    selections: int = 1  # top-level fields asked for: a coalesced poll asks for one per build


class SimulatorState:
    def __init__(
        self,
        *,
        config: SimulatorConfig | None = None,
        tokens: set[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._skew = 0.0
        self._mono0 = clock()
        self._wall0 = time.time()
        self.tokens = set(tokens) if tokens is not None else None
        self._initial_config = (config or SimulatorConfig()).model_copy()
        self.reset()

    # ---------------------------------------------------------------- housekeeping

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def reset(self) -> None:
        """Forget everything (apps, uploads, builds, submissions, faults, calls); restore the config."""
        with self._lock:
            self.config = self._initial_config.model_copy()
            self.apps: dict[str, App] = {}
            self.uploads: dict[str, Upload] = {}
            self.builds: dict[str, Build] = {}
            self.submissions: dict[str, Submission] = {}
            self.receipts: dict[str, Receipt] = {}
            self.call_faults: list[CallFault] = []
            self.outcome_faults: list[OutcomeFault] = []
            self.calls: list[CallRecord] = []

    def now(self) -> float:
        return self._clock() + self._skew

    def wall(self, instant: float | None) -> str | None:
        if instant is None:
            return None
        moment = datetime.fromtimestamp(self._wall0 + (instant - self._mono0), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def advance_clock(self, seconds: float) -> None:
        """Jump simulated time forward by `seconds` real seconds (what a test would otherwise wait)."""
        with self._lock:
            self._skew += max(0.0, seconds)

    def configure(self, changes: dict[str, Any]) -> SimulatorConfig:
        with self._lock:
            merged = {**self.config.model_dump(), **changes}
            self.config = SimulatorConfig.model_validate(merged)
            return self.config

    def add_faults(self, request: FaultsRequest) -> None:
        with self._lock:
            self.call_faults.extend(fault.model_copy() for fault in request.calls)
            self.outcome_faults.extend(fault.model_copy() for fault in request.outcomes)

    def take_call_fault(self, names: set[str]) -> CallFault | None:
        """Consume one use of the first fault that matches any of `names`."""
        with self._lock:
            for fault in self.call_faults:
                if fault.operation == "*" or fault.operation in names:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.call_faults.remove(fault)
                    return fault.model_copy(update={"count": 1})
            return None

    def _take_outcome(self, target: str, platform: str | None = None) -> tuple[str, str] | None:
        for fault in self.outcome_faults:
            if fault.target == target and (fault.platform is None or fault.platform == platform):
                fault.count -= 1
                if fault.count <= 0:
                    self.outcome_faults.remove(fault)
                return (fault.error_code, fault.message)
        return None

    def record_call(self, record: CallRecord) -> None:
        with self._lock:
            self.calls.append(record)

    def calls_of(self, name: str) -> list[CallRecord]:
        """Calls whose operationName or field names include `name`."""
        with self._lock:
            return [c for c in self.calls if c.operation_name == name or name in c.fields]

    def _scaled(self, seconds: float) -> float:
        return seconds * self.config.time_scale

    def _not_found(self, what: str, ident: str) -> ApiError:
        return ApiError(f"{what} with id {ident} not found", code=self.config.not_found_error_code)

    # ---------------------------------------------------------------- apps

    def add_app(self, app_id: str, *, slug: str | None = None, owner: str | None = None) -> App:
        with self._lock:
            app = App(id=app_id, slug=slug or f"app-{app_id[:8]}", owner=owner or self.config.owner_account)
            self.apps[app_id] = app
            return app

    def app(self, app_id: str) -> App:
        with self._lock:
            if app_id not in self.apps:
                if not self.config.auto_create_apps:
                    raise ApiError(
                        f"Experience with id '{app_id}' does not exist.", code="EXPERIENCE_NOT_FOUND"
                    )
                self.add_app(app_id)
            return self.apps[app_id]

    def app_by_full_name(self, full_name: str) -> App:
        with self._lock:
            owner, _, slug = full_name.removeprefix("@").partition("/")
            for app in self.apps.values():
                if app.owner == owner and app.slug == slug:
                    return app
            raise ApiError(f"Experience with name '{full_name}' does not exist.", code="EXPERIENCE_NOT_FOUND")

    # ---------------------------------------------------------------- uploads

    def create_upload_session(self, upload_type: str, filename: str | None) -> Upload:
        with self._lock:
            name = re.sub(r"[^A-Za-z0-9._-]", "_", filename or "project.tar.gz")
            upload = Upload(
                bucket_key=f"{upload_type.lower()}/{uuid.uuid4()}/{name}",
                type=upload_type,
                signature=uuid.uuid4().hex,
                content_type="application/octet-stream",
            )
            self.uploads[upload.bucket_key] = upload
            return upload

    def complete_upload(self, bucket_key: str, *, size: int, md5_base64: str, sha256: str) -> None:
        with self._lock:
            upload = self.uploads[bucket_key]
            upload.size, upload.md5_base64, upload.sha256 = size, md5_base64, sha256

    # ---------------------------------------------------------------- time

    def advance(self) -> None:
        """Move every build, submission and receipt to where it is at `now()`."""
        with self._lock:
            now = self.now()
            for receipt in self.receipts.values():
                self._advance_receipt(receipt, now)
            for build in self.builds.values():
                self._advance_build(build, now)
            for submission in self.submissions.values():
                self._advance_submission(submission, now)

    def _advance_build(self, build: Build, now: float) -> None:
        if build.status in TERMINAL_BUILD:
            return
        before = build.status
        if build.cancel_requested is not None:
            done = build.cancel_requested + self._scaled(self.config.cancel_seconds)
            if now >= done:
                build.status, build.completed = "CANCELED", done
            else:
                build.status = "PENDING_CANCEL"
        elif now >= build.t_end:
            build.status = "ERRORED" if build.planned_error else "FINISHED"
            build.completed = build.t_end
        elif now >= build.t_start:
            build.status = "IN_PROGRESS"
        elif now >= build.t_enqueue:
            build.status = "IN_QUEUE"
            if build.initial_queue_position is None:
                build.initial_queue_position = self.queue_position(build)
        if build.status != before:
            build.updated = now

    def _advance_submission(self, sub: Submission, now: float) -> None:
        if sub.status in TERMINAL_SUBMISSION:
            return
        before = sub.status
        build = self.builds.get(sub.build_id) if sub.build_id else None
        if build is not None and build.status not in TERMINAL_BUILD:
            sub.status = "AWAITING_BUILD"
        elif build is not None and build.status != "FINISHED":
            sub.status, sub.completed = "ERRORED", build.completed or now
            sub.error = (
                "SUBMISSION_BUILD_NOT_FINISHED",
                f"The build ended {build.status}; nothing to submit.",
            )
        else:
            ready = max(sub.created, build.completed or sub.created) if build else sub.created
            start = ready + self._scaled(self.config.submit_queue_seconds)
            end = start + self._scaled(self.config.submit_seconds)
            if now >= end:
                sub.status, sub.completed = ("ERRORED" if sub.planned_error else "FINISHED"), end
                sub.error = sub.planned_error
            elif now >= start:
                sub.status = "IN_PROGRESS"
            else:
                sub.status = "IN_QUEUE"
        if sub.status != before:
            sub.updated = now

    def _advance_receipt(self, receipt: Receipt, now: float) -> None:
        if receipt.state in ("SUCCESS", "FAILURE"):
            return
        if now < receipt.t_done:
            receipt.state = "IN_PROGRESS" if now >= (receipt.created + receipt.t_done) / 2 else "QUEUED"
            return
        receipt.updated = receipt.t_done
        if receipt.planned_error is not None:
            receipt.state, receipt.error = "FAILURE", receipt.planned_error
            return
        data = receipt.build_input
        build = self._new_build(
            app_id=receipt.app_id,
            platform=data["platform"],
            origin="github",
            created=receipt.t_done,
            metadata={"buildProfile": data["buildProfile"]},
            git_ref=data["gitRef"],
            source={"type": "GIT", "gitRef": data["gitRef"], "baseDirectory": data.get("baseDirectory")},
        )
        receipt.state = "SUCCESS"
        receipt.result_id = build.id if self.config.receipt_result_id == "build_id" else None
        self._advance_build(build, now)

    def queue_position(self, build: Build) -> int | None:
        if build.status != "IN_QUEUE":
            return None
        ahead = [b for b in self.builds.values() if b.status == "IN_QUEUE" and b.t_enqueue < build.t_enqueue]
        return len(ahead) + 1

    def wait_left(self, build: Build) -> int | None:
        if build.status not in ("NEW", "IN_QUEUE"):
            return None
        return max(0, math.ceil(build.t_start - self.now()))

    # ---------------------------------------------------------------- builds

    def _new_build(
        self,
        *,
        app_id: str,
        platform: str,
        origin: Literal["archive", "github"],
        created: float,
        metadata: dict[str, Any],
        git_ref: str | None = None,
        source: dict[str, Any] | None = None,
        job: dict[str, Any] | None = None,
        resource_class: str | None = None,
        credentials_fingerprint: str | None = None,
        initiating_actor: str | None = None,
    ) -> Build:
        cfg = self.config
        t_enqueue = created + self._scaled(cfg.new_seconds)
        t_start = t_enqueue + self._scaled(cfg.queue_seconds)
        build = Build(
            id=str(uuid.uuid4()),
            app_id=app_id,
            platform=platform,
            origin=origin,
            created=created,
            t_enqueue=t_enqueue,
            t_start=t_start,
            t_end=t_start + self._scaled(cfg.build_seconds),
            metadata={k: v for k, v in metadata.items() if v is not None},
            job=job or {},
            resource_class=resource_class,
            git_ref=git_ref,
            source=source or {},
            credentials_fingerprint=credentials_fingerprint,
            planned_error=self._take_outcome("build", platform),
            updated=created,
            project_root_directory=(job or {}).get("projectRootDirectory"),
            initiating_actor=initiating_actor or ROBOT_ACTOR_ID,
        )
        self.builds[build.id] = build
        return build

    def add_outside_build(
        self, *, app_id: str, platform: str, git_ref: str, profile: str, actor: str, message: str | None
    ) -> Build:
        """A GitHub build that someone else started (a person on the dashboard, another tool)."""
        with self._lock:
            self.app(app_id)
            metadata = {"buildProfile": profile, "message": message}
            return self._new_build(
                app_id=app_id,
                platform=platform,
                origin="github",
                created=self.now(),
                metadata=metadata,
                git_ref=git_ref,
                initiating_actor=actor,
            )

    def _check_metadata(self, metadata: dict[str, Any]) -> None:
        if not self.config.enforce_metadata_limits:
            return
        message = metadata.get("message")
        if message is not None and len(message) > 1024:
            raise validation_error("metadata.message must be at most 1024 characters")
        commit = metadata.get("gitCommitHash")
        if commit is not None and not GIT_HASH.match(commit):
            raise validation_error("metadata.gitCommitHash must be a 40-character hexadecimal SHA")

    def create_build(
        self,
        *,
        app_id: str,
        platform: str,
        job: dict[str, Any],
        metadata: dict[str, Any] | None,
        build_params: dict[str, Any] | None,
    ) -> Build:
        with self._lock:
            self.app(app_id)
            metadata = dict(metadata or {})
            self._check_metadata(metadata)
            archive = dict(job["projectArchive"])
            kind = archive["type"]
            source: dict[str, Any] = {"type": kind}
            if kind == "GCS":
                key = archive.get("bucketKey")
                upload = self.uploads.get(key or "")
                if upload is None or upload.size is None:
                    raise validation_error(f"projectArchive.bucketKey {key!r} is not an uploaded archive")
                source.update(bucketKey=key, size=upload.size, md5=upload.md5_base64, sha256=upload.sha256)
            elif kind == "URL" and self.config.accept_url_sources and archive.get("url"):
                source["url"] = archive["url"]
            elif kind == "GIT" and self.config.accept_git_sources and archive.get("repositoryUrl"):
                source.update(repositoryUrl=archive["repositoryUrl"], gitRef=archive.get("gitRef"))
            else:
                raise validation_error(f"Unsupported project archive source type {kind}")
            secrets = job.get("secrets")
            public_job = {k: v for k, v in job.items() if k != "secrets"}
            return self._new_build(
                app_id=app_id,
                platform=platform,
                origin="archive",
                created=self.now(),
                metadata=metadata,
                git_ref=archive.get("gitRef"),
                source=source,
                job=public_job,
                resource_class=(build_params or {}).get("resourceClass"),
                credentials_fingerprint=fingerprint(secrets) if secrets else None,
            )

    def build(self, build_id: str) -> Build:
        with self._lock:
            self.advance()
            if build_id not in self.builds:
                raise self._not_found("Build", build_id)
            return self.builds[build_id]

    def cancel_build(self, build_id: str) -> Build:
        with self._lock:
            build = self.build(build_id)
            if build.status not in TERMINAL_BUILD and build.cancel_requested is None:
                build.cancel_requested = self.now()
                self._advance_build(build, self.now())
            return build

    def update_build_metadata(self, build_id: str, metadata: dict[str, Any]) -> Build:
        with self._lock:
            build = self.build(build_id)
            self._check_metadata(metadata)
            build.metadata.update({k: v for k, v in metadata.items() if v is not None})
            build.updated = self.now()
            return build

    def app_builds(
        self,
        app_id: str,
        *,
        offset: int,
        limit: int,
        build_filter: dict[str, Any] | None,
        platform: str | None,
        status: str | None,
    ) -> list[Build]:
        with self._lock:
            self.app(app_id)
            self.advance()
            limit = self._limit(limit)
            wanted = dict(build_filter or {})
            if platform:
                wanted["platform"] = platform
            if status:
                wanted["status"] = status
            builds = [b for b in self.builds.values() if b.app_id == app_id and self._matches(b, wanted)]
            builds.sort(key=lambda b: b.created, reverse=self.config.builds_order == "newest_first")
            return builds[offset : offset + limit]

    def _limit(self, limit: int) -> int:
        if limit > self.config.max_list_limit:
            if self.config.list_limit_exceeded == "error":
                raise validation_error(f"limit must be at most {self.config.max_list_limit}")
            return self.config.max_list_limit
        return max(0, limit)

    @staticmethod
    def _matches(build: Build, wanted: dict[str, Any]) -> bool:
        values = {
            "platform": build.platform,
            "status": build.status,
            "buildProfile": build.profile,
            "gitCommitHash": build.metadata.get("gitCommitHash"),
            "appVersion": build.metadata.get("appVersion"),
            "appBuildVersion": build.metadata.get("appBuildVersion"),
            "appIdentifier": build.metadata.get("appIdentifier"),
            "channel": build.metadata.get("channel"),
            "distribution": build.metadata.get("distribution"),
            "developmentClient": build.metadata.get("developmentClient"),
            "simulator": build.metadata.get("simulator"),
            "runtimeVersion": build.metadata.get("runtimeVersion"),
            "sdkVersion": build.metadata.get("sdkVersion"),
            "fingerprintHash": build.metadata.get("fingerprintHash"),
        }
        for key, value in wanted.items():
            if value is None:
                continue
            if key == "hasFingerprint":
                if bool(values["fingerprintHash"]) != value:
                    return False
            elif values.get(key) != value:
                return False
        return True

    # ---------------------------------------------------------------- GitHub builds

    def create_github_build(self, build_input: dict[str, Any]) -> Receipt:
        with self._lock:
            self.app(build_input["appId"])
            if not self.config.github_builds_allowed:
                raise ApiError(
                    "Entity not authorized: GitHubApp (viewer = RobotViewerContext, action = CREATE)",
                    code="UNAUTHORIZED_ERROR",
                )
            now = self.now()
            receipt = Receipt(
                id=str(uuid.uuid4()),
                app_id=build_input["appId"],
                created=now,
                t_done=now + self._scaled(self.config.receipt_seconds),
                build_input=dict(build_input),
                planned_error=self._take_outcome("receipt", build_input.get("platform")),
                updated=now,
            )
            self.receipts[receipt.id] = receipt
            return receipt

    def receipt(self, receipt_id: str) -> Receipt:
        with self._lock:
            self.advance()
            if receipt_id not in self.receipts:
                raise self._not_found("BackgroundJobReceipt", receipt_id)
            return self.receipts[receipt_id]

    # ---------------------------------------------------------------- submissions

    def create_submission(self, platform: str, data: dict[str, Any]) -> Submission:
        with self._lock:
            self.app(data["appId"])
            self.advance()
            build_id = data.get("submittedBuildId")
            if build_id is None and data.get("archiveSource") is None:
                raise validation_error("Either submittedBuildId or archiveSource must be provided")
            if build_id is not None:
                build = self.build(build_id)
                if build.platform != platform:
                    raise validation_error(f"Build {build_id} is a {build.platform} build, not {platform}")
                if build.app_id != data["appId"]:
                    raise validation_error(f"Build {build_id} does not belong to app {data['appId']}")
            config = dict(data["config"])
            if platform == "IOS":
                secret, public = self._ios_credentials(config)
            else:
                secret, public = self._android_credentials(config)
            now = self.now()
            sub = Submission(
                id=str(uuid.uuid4()),
                app_id=data["appId"],
                platform=platform,
                build_id=build_id,
                created=now,
                config=public,
                credentials_fingerprint=fingerprint(secret),
                planned_error=self._take_outcome("submission", platform),
                updated=now,
            )
            self.submissions[sub.id] = sub
            self._advance_submission(sub, now)
            return sub

    @staticmethod
    def _ios_credentials(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        key, key_id = config.get("ascApiKey"), config.get("ascApiKeyId")
        apple_id = config.get("appleIdUsername") or config.get("appleAppSpecificPassword")
        if sum(1 for given in (key, key_id, apple_id) if given) != 1:
            raise validation_error("Provide exactly one of ascApiKey, ascApiKeyId or Apple ID credentials")
        if apple_id and not (config.get("appleIdUsername") and config.get("appleAppSpecificPassword")):
            raise validation_error("appleIdUsername and appleAppSpecificPassword go together")
        public = {k: v for k, v in config.items() if k not in ("ascApiKey", "appleAppSpecificPassword")}
        if key:
            public["ascApiKey"] = {
                "keyIdentifier": key["keyIdentifier"],
                "issuerIdentifier": key["issuerIdentifier"],
                "keyP8Fingerprint": fingerprint(key["keyP8"]),
            }
            return key["keyP8"], public
        return key_id or config.get("appleAppSpecificPassword"), public

    @staticmethod
    def _android_credentials(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        key_json, key_id = config.get("googleServiceAccountKeyJson"), config.get("googleServiceAccountKeyId")
        if bool(key_json) == bool(key_id):
            raise validation_error(
                "Provide exactly one of googleServiceAccountKeyJson or googleServiceAccountKeyId"
            )
        rollout = config.get("rollout")
        if rollout is not None:
            if config.get("releaseStatus") != "IN_PROGRESS":
                raise validation_error("rollout is only allowed with releaseStatus IN_PROGRESS")
            if not 0 <= rollout <= 1:
                raise validation_error("rollout must be between 0 and 1")
        public = {k: v for k, v in config.items() if k != "googleServiceAccountKeyJson"}
        if key_json:
            public["googleServiceAccountKeyJsonFingerprint"] = fingerprint(key_json)
        return key_json or key_id, public

    def submission(self, submission_id: str) -> Submission:
        with self._lock:
            self.advance()
            if submission_id not in self.submissions:
                raise self._not_found("Submission", submission_id)
            return self.submissions[submission_id]

    def cancel_submission(self, submission_id: str) -> Submission:
        with self._lock:
            sub = self.submission(submission_id)
            if sub.status not in TERMINAL_SUBMISSION:
                sub.status, sub.canceled_at = "CANCELED", self.now()
                sub.completed = sub.updated = sub.canceled_at
            return sub

    def build_submissions(self, build_id: str) -> list[Submission]:
        with self._lock:
            self.advance()
            return sorted(
                (s for s in self.submissions.values() if s.build_id == build_id), key=lambda s: s.created
            )

    def app_submissions(
        self, app_id: str, *, status: str | None, platform: str | None, limit: int, offset: int
    ) -> list[Submission]:
        with self._lock:
            self.app(app_id)
            self.advance()
            subs = [
                s
                for s in self.submissions.values()
                if s.app_id == app_id and status in (None, s.status) and platform in (None, s.platform)
            ]
            subs.sort(key=lambda s: s.created, reverse=True)
            return subs[offset : offset + self._limit(limit)]

    # ---------------------------------------------------------------- admin views

    def describe_builds(self) -> list[dict[str, Any]]:
        with self._lock:
            self.advance()
            return [self._describe_build(b) for b in sorted(self.builds.values(), key=lambda b: b.created)]

    def _describe_build(self, build: Build) -> dict[str, Any]:
        return {
            "id": build.id,
            "appId": build.app_id,
            "platform": build.platform,
            "profile": build.profile,
            "status": build.status,
            "message": build.metadata.get("message"),
            "createdAt": self.wall(build.created),
            "completedAt": self.wall(build.completed),
            "origin": build.origin,
            "gitRef": build.git_ref,
            "initiatingActor": build.initiating_actor,
            "source": build.source,
            "bucketKey": build.source.get("bucketKey"),
            "workflow": build.job.get("type"),
            "projectRootDirectory": build.project_root_directory,
            "version": build.job.get("version"),
            "resourceClass": build.resource_class,
            "metadata": build.metadata,
            "credentialsFingerprint": build.credentials_fingerprint,
            "errorCode": build.planned_error[0]
            if build.status == "ERRORED" and build.planned_error
            else None,
            "submissionIds": [s.id for s in self.submissions.values() if s.build_id == build.id],
        }

    def describe_submissions(self) -> list[dict[str, Any]]:
        with self._lock:
            self.advance()
            return [
                {
                    "id": s.id,
                    "appId": s.app_id,
                    "platform": s.platform,
                    "buildId": s.build_id,
                    "profile": self._profile_of(s.build_id),
                    "status": s.status,
                    "message": self.builds[s.build_id].metadata.get("message")
                    if s.build_id in self.builds
                    else None,
                    "createdAt": self.wall(s.created),
                    "completedAt": self.wall(s.completed),
                    "config": s.config,
                    "credentialsFingerprint": s.credentials_fingerprint,
                    "errorCode": s.error[0] if s.error else None,
                }
                for s in sorted(self.submissions.values(), key=lambda s: s.created)
            ]

    def _profile_of(self, build_id: str | None) -> str | None:
        build = self.builds.get(build_id or "")
        return build.metadata.get("buildProfile") if build else None
