"""A chaos run's plan, drawn from one seed: the resources and a timeline of what goes wrong.

Everything random is drawn here, from `random.Random(seed)`, before the run starts: the same seed
gives the same resources, faults, kills, cancels and deletes at the same moments (the operator's
own timing still varies run to run; the report prints what actually happened).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

PROJECT_ID = "3f8c6c2e-5b1d-4e0a-9c47-2d8f1b6a7e90"
REFS = ("refs/heads/main", "refs/tags/v1.0.0", "refs/tags/v1.1.0", "refs/heads/release")  # shared

# Expo operations a fault may target (operationName as the operator sends it).
CREATES = (
    "CreateGitHubBuild",
    "CreateIosBuild",
    "CreateAndroidBuild",
    "CreateIosSubmission",
    "CreateAndroidSubmission",
)
STAMPS = ("UpdateBuildMetadata",)
LOOKUPS = (
    "BackgroundJobReceiptById",
    "AppBuilds",
    "BuildsById",
    "BuildById",
    "BuildSubmissions",
    "SubmissionById",
)
CANCELS = ("CancelBuild", "CancelSubmission")
UPLOADS = ("CreateUploadSession", "upload")
EXPO_OPERATIONS = CREATES + STAMPS + LOOKUPS + CANCELS + UPLOADS
# Where a kill hurts most: right as a create or a stamp reaches Expo (weighted by how often they come).
KILL_TRIGGERS = (
    ("CreateGitHubBuild", 3),
    ("UpdateBuildMetadata", 3),
    ("CreateIosSubmission", 1),
    ("CreateAndroidSubmission", 1),
    ("CreateIosBuild", 1),
    ("CreateAndroidBuild", 1),
    ("CancelBuild", 1),
)


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    resources: int = 50
    duration: float = 120.0  # seconds of the timeline (resources are created in its first 75 %)
    kills: int = 10  # SIGKILLs: half at random moments, half as a create or stamp reaches Expo
    sigterms: int = 2
    expo_faults: int = 60
    kube_faults: int = 30
    outage_seconds: float = 30.0  # one Kubernetes API outage (0: none)
    time_scale: float = 0.01  # Expo-realistic durations scaled: a 600 s build takes 6 s
    namespaces: tuple[str, ...] = ("chaos-a", "chaos-b")
    settle_timeout: float = 240.0  # after the timeline: how long everything may take to finish
    archive_share: float = 0.15  # resources built from an uploaded archive instead of GitHub


@dataclass(frozen=True)
class PlannedResource:
    name: str
    namespace: str
    at: float
    manifest: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def max_attempts(self) -> int:
        return int(self.manifest["spec"].get("retry", {}).get("maxAttempts", 3))


@dataclass(frozen=True)
class Action:
    """One thing that happens at `at` seconds into the timeline."""

    at: float
    kind: str  # kill | kill_on_call | sigterm | expo_fault | expo_outcome | slow_receipts | kube_fault |
    #            cancel | delete | retry
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"t={self.at:6.2f}s {self.kind}({shown})"


@dataclass(frozen=True)
class Plan:
    config: ChaosConfig
    resources: list[PlannedResource]
    actions: list[Action]

    def describe(self) -> str:
        return "\n".join(action.describe() for action in self.actions)


def make_plan(config: ChaosConfig) -> Plan:
    rng = random.Random(config.seed)
    resources = [_resource(rng, config, index) for index in range(config.resources)]
    actions: list[Action] = []
    span = config.duration
    uniform = rng.uniform

    for index in range(config.kills):
        restart_after = round(uniform(0.1, 1.5), 2)
        if index % 2 == 0:
            actions.append(Action(uniform(2, span), "kill", {"restart_after": restart_after}))
        else:
            # Armed now; fires as the operation's next call reaches Expo (or after 10 s regardless).
            operation = _weighted(rng, KILL_TRIGGERS)
            delay = round(uniform(0.0, 0.05), 3)
            actions.append(
                Action(
                    uniform(2, span * 0.9),
                    "kill_on_call",
                    {"operation": operation, "delay": delay, "restart_after": restart_after},
                )
            )
    for _ in range(config.sigterms):
        actions.append(Action(uniform(5, span), "sigterm", {"restart_after": round(uniform(0.1, 1.0), 2)}))

    # Every create and stamp meets a 401 and a lost answer (before and after Expo applies it) at least once.
    for operation in CREATES + STAMPS:
        actions.append(
            Action(
                uniform(0, span),
                "expo_fault",
                {"kind": "unauthorized", "operation": operation, "count": 1, "http_status": 401},
            )
        )
        for when in ("before", "after"):
            actions.append(
                Action(
                    uniform(0, span),
                    "expo_fault",
                    {"kind": "drop", "operation": operation, "count": 1, "drop": when},
                )
            )
    for operation in (*STAMPS, "BackgroundJobReceiptById"):
        actions.append(
            Action(
                uniform(0, span),
                "expo_fault",
                {
                    "kind": "unauthorized_graphql",
                    "operation": operation,
                    "count": 1,
                    "error_code": "UNAUTHORIZED_ERROR",
                },
            )
        )
    for _ in range(config.expo_faults):
        actions.append(_expo_fault(rng, uniform(0, span)))
    for _ in range(max(1, config.expo_faults // 15)):
        start = uniform(0, span * 0.7)
        # Receipts slower than the client's first retries: a lost create answer meets a pending receipt.
        actions.append(Action(start, "slow_receipts", {"receipt_seconds": rng.choice([400, 800, 1200])}))
        actions.append(Action(start + uniform(5, 15), "slow_receipts", {"receipt_seconds": 20}))

    for _ in range(config.kube_faults):
        actions.append(_kube_fault(rng, uniform(0, span)))
    if config.outage_seconds > 0:
        actions.append(
            Action(
                uniform(span * 0.2, span * 0.5),
                "kube_fault",
                {"kind": "outage", "seconds": config.outage_seconds},
            )
        )

    for resource in resources:
        roll = rng.random()
        if roll < 0.08:
            actions.append(Action(resource.at + uniform(0.2, 6), "cancel", {"resource": resource.key}))
        elif roll < 0.16:
            actions.append(Action(resource.at + uniform(0.2, 6), "delete", {"resource": resource.key}))
    for _ in range(max(2, config.resources // 10)):
        actions.append(Action(uniform(span * 0.3, span), "retry", {"pick": rng.randrange(1000)}))

    actions.sort(key=lambda action: action.at)
    return Plan(config=config, resources=sorted(resources, key=lambda r: r.at), actions=actions)


def _resource(rng: random.Random, config: ChaosConfig, index: int) -> PlannedResource:
    platform = rng.choice(["ios", "android"])
    name = f"chaos-{index:03d}-{platform}"
    namespace = config.namespaces[index % len(config.namespaces)]
    spec: dict[str, Any] = {
        "app": {"projectId": PROJECT_ID, "platform": platform, "profile": "production"},
        "expo": {"tokenSecretRef": {"name": "expo-robot"}},
        "retry": {
            "maxAttempts": rng.randint(1, 4),
            "backoff": {"initial": f"{rng.choice([200, 500, 1000])}ms", "factor": 2, "max": "2s"},
        },
    }
    if rng.random() < config.archive_share:
        # The url and sha256 are filled in by the run, which serves the tarball.
        spec["source"] = {"archive": {"url": "https://artifacts.invalid/project.tar.gz"}}
        if platform == "android":
            spec["signing"] = {"secretRef": {"name": "mobile-android-signing"}}
    else:
        spec["source"] = {"github": {"ref": rng.choice(REFS)}}
    if rng.random() < 0.6:
        if platform == "ios":
            spec["submit"] = {"ios": {"ascAppId": "1234567890", "apiKeySecretRef": {"name": "asc-api-key"}}}
        else:
            spec["submit"] = {"android": {"serviceAccountKeySecretRef": {"name": "play-publisher"}}}
    if rng.random() < 0.1:
        spec["timeouts"] = {"build": rng.choice(["2s", "4s"]), "submit": "3s"}
    if rng.random() < 0.2:
        spec["ttlSecondsAfterFinished"] = rng.randint(1, 5)
    manifest = {
        "apiVersion": "publishing.dev/v1alpha1",
        "kind": "PublishingBuild",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    return PlannedResource(name, namespace, rng.uniform(0, config.duration * 0.75), manifest)


# The operations the operator calls most, weighted so that most faults meet a call.
_BUSY = (
    ("BuildsById", 4),
    ("BuildById", 1),
    ("CreateGitHubBuild", 3),
    ("BackgroundJobReceiptById", 2),
    ("UpdateBuildMetadata", 2),
    ("AppBuilds", 2),
    ("CreateIosSubmission", 1),
    ("CreateAndroidSubmission", 1),
    ("SubmissionById", 2),
    ("BuildSubmissions", 1),
    ("CancelBuild", 1),
    ("CreateIosBuild", 1),
    ("CreateAndroidBuild", 1),
    ("CreateUploadSession", 1),
    ("upload", 1),
)
_EXPO_KINDS = (
    ("http_5xx", 4),
    ("http_429", 2),
    ("transient", 3),
    ("unauthorized", 2),
    ("unauthorized_graphql", 1),
    ("drop", 4),
    ("latency", 2),
    ("outcome_build_retryable", 2),
    ("outcome_build_user", 1),
    ("outcome_submission", 2),
    ("outcome_receipt", 1),
)


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in choices], weights=[weight for _, weight in choices])[0]


def _expo_fault(rng: random.Random, at: float) -> Action:
    kind = _weighted(rng, _EXPO_KINDS)
    operation = _weighted(rng, _BUSY)
    count = rng.randint(1, 3)
    call: dict[str, Any] = {"operation": operation, "count": count}
    if kind == "http_5xx":
        call["http_status"] = rng.choice([500, 502, 503])
    elif kind == "http_429":
        call |= {"http_status": 429, "retry_after": rng.choice([0.5, 1, 2])}
    elif kind == "transient":
        call |= {"error_code": "SERVER_ERROR", "is_transient": True, "message": "simulated transient"}
    elif kind == "unauthorized":
        call |= {"http_status": 401, "count": 1}
    elif kind == "unauthorized_graphql":
        call |= {"operation": rng.choice(STAMPS + LOOKUPS), "error_code": "UNAUTHORIZED_ERROR", "count": 1}
    elif kind == "drop":
        call |= {"operation": rng.choice(CREATES + STAMPS + CANCELS), "drop": rng.choice(["before", "after"])}
    elif kind == "latency":
        call["latency"] = rng.choice([0.5, 1.0, 3.0])
    else:
        target = {
            "outcome_build_retryable": "build",
            "outcome_build_user": "build",
            "outcome_submission": "submission",
            "outcome_receipt": "receipt",
        }[kind]
        code = {
            "outcome_build_retryable": rng.choice(["UNKNOWN_ERROR", "SERVER_ERROR"]),
            "outcome_build_user": "EAS_BUILD_UNKNOWN_GRADLE_ERROR",
            "outcome_submission": "SUBMISSION_SERVICE_ERROR",
            "outcome_receipt": "GITHUB_BUILD_FAILED",
        }[kind]
        return Action(at, "expo_outcome", {"kind": kind, "target": target, "count": 1, "error_code": code})
    return Action(at, "expo_fault", {"kind": kind, **call})


def _kube_fault(rng: random.Random, at: float) -> Action:
    kind = rng.choice(["conflict", "error", "drop", "cut_watches", "gone", "latency"])
    if kind == "conflict":
        return Action(
            at,
            "kube_fault",
            {
                "kind": "error",
                "code": 409,
                "verb": "patch",
                "subresource": "status",
                "count": rng.randint(2, 6),
            },
        )
    if kind == "error":
        verb = rng.choice([None, "get", "list", "patch", "create", "delete"])
        return Action(
            at,
            "kube_fault",
            {"kind": "error", "code": rng.choice([500, 503, 504]), "verb": verb, "count": rng.randint(1, 4)},
        )
    if kind == "drop":
        return Action(
            at,
            "kube_fault",
            {
                "kind": "drop",
                "verb": "patch",
                "when": rng.choice(["before", "after"]),
                "count": rng.randint(1, 2),
            },
        )
    if kind == "gone":
        return Action(at, "kube_fault", {"kind": "gone", "count": rng.randint(1, 3), "then_cut": True})
    if kind == "latency":
        return Action(
            at,
            "kube_fault",
            {"kind": "latency", "seconds": rng.choice([0.2, 1.0]), "count": rng.randint(1, 5)},
        )
    return Action(at, "kube_fault", {"kind": "cut_watches"})
