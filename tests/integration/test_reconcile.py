"""Issue 5: the real operator drives PublishingBuilds from creation to Succeeded, crash-safe.

Real operator process + emulated Kubernetes API + Expo simulator, over sockets; kubectl where a
user would use it. Waits are conditions with deadlines; Expo time is scaled, never slept.
"""

from __future__ import annotations

import hashlib
import signal
import socket
from datetime import timedelta
from typing import Any

import httpx
import pytest
import yaml

from tests.fixtures.expo import ArchiveServer, make_tarball
from tests.fixtures.kube import EXAMPLES_DIR
from tests.fixtures.observability import ALERTS, DASHBOARD
from tests.fixtures.operator import (
    Stack,
    condition,
    example,
    load_yaml,
    parse_time,
    phase,
    publishing_build,
)

pytestmark = pytest.mark.integration


def fingerprint(value: str) -> str:
    """As the simulator records credentials: a sha256 prefix."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def secret_value(name: str, key: str) -> str:
    for doc in load_yaml(EXAMPLES_DIR / "secrets.yaml"):
        if doc["metadata"]["name"] == name:
            return str(doc["stringData"][key])
    raise KeyError(name)


def archive_example(archive_server: ArchiveServer) -> dict[str, Any]:
    """examples/archive-build.yaml, pointed at a tarball served from 127.0.0.1."""
    tarball = make_tarball({"apps/mobile/package.json": b'{"name": "mobile"}'})
    doc = example("archive-build")
    doc["spec"]["source"]["archive"]["url"] = archive_server.serve("mobile-1.4.3-rc1.tar.gz", tarball)
    doc["spec"]["source"]["archive"]["sha256"] = hashlib.sha256(tarball).hexdigest()
    return doc


async def test_examples_reach_succeeded(stack: Stack, archive_server: ArchiveServer) -> None:
    stack.apply_example_secrets()
    ios, android, archive = (
        example("ios-testflight"),
        example("android-play-internal"),
        archive_example(archive_server),
    )
    stack.apply(ios, android, archive)
    metrics_port = free_port()
    stack.operator(archive_allowed_hosts=archive_server.host_port, metrics_port=str(metrics_port))

    done = {}
    for doc in (ios, android, archive):
        name = doc["metadata"]["name"]
        done[name] = await stack.wait(name, finished_and_tidied, timeout=90)
        assert phase(done[name]) == "Succeeded", done[name]["status"]

    builds = {b["message"]: b for b in stack.builds()}
    submissions = stack.submissions()
    assert len(builds) == 3, "exactly one EAS build per resource"
    assert len(submissions) == 2, "one submission per resource that asks for one"

    for doc in (ios, android, archive):
        name, spec = doc["metadata"]["name"], doc["spec"]
        status = done[name]["status"]
        key = status["build"]["requestKey"]
        assert key == f"{done[name]['metadata']['uid']}.1"
        build = builds[key]
        assert status["build"]["id"] == build["id"]
        assert status["build"]["url"].endswith(f"/builds/{build['id']}")
        assert status["build"]["artifactUrl"].startswith("https://")
        assert (build["appId"], build["platform"].lower(), build["profile"]) == (
            spec["app"]["projectId"],
            spec["app"]["platform"],
            spec["app"]["profile"],
        )
        cond = condition(done[name], "Succeeded")
        assert (cond["status"], cond["reason"]) == ("True", "Succeeded")
        assert status["completionTime"] >= status["startTime"]
        assert done[name]["metadata"]["labels"]["publishing.dev/result"] == "succeeded"
        assert "publishing.dev/eas-work" not in (done[name]["metadata"].get("finalizers") or [])
        if "github" in spec["source"]:
            assert build["gitRef"] == spec["source"]["github"]["ref"]

    # Build-only: the archive example has no submit block.
    assert "submission" not in done[archive["metadata"]["name"]]["status"]
    assert builds[done[archive["metadata"]["name"]]["status"]["build"]["requestKey"]]["submissionIds"] == []

    # The right credentials went to the right store (fingerprints: the simulator keeps no secrets).
    by_build = {s["buildId"]: s for s in submissions}
    ios_sub = by_build[done[ios["metadata"]["name"]]["status"]["build"]["id"]]
    assert ios_sub["config"]["ascAppIdentifier"] == ios["spec"]["submit"]["ios"]["ascAppId"]
    assert ios_sub["credentialsFingerprint"] == fingerprint(
        secret_value("asc-api-key", "private-key").strip()
    )
    assert ios_sub["config"]["ascApiKey"]["keyIdentifier"] == secret_value("asc-api-key", "key-id")
    android_sub = by_build[done[android["metadata"]["name"]]["status"]["build"]["id"]]
    assert android_sub["config"]["track"] == "internal"
    assert android_sub["credentialsFingerprint"] == fingerprint(
        secret_value("play-publisher", "service-account.json")
    )

    # What a user sees.
    table = stack.kube.kubectl("get", "pb").stdout
    assert "Succeeded" in table and "PLATFORM" in table
    events = stack.kube.kubectl("get", "events", "-o", "yaml").stdout
    reasons = {e["reason"] for e in yaml.safe_load(events)["items"]}
    assert {"BuildStarted", "BuildFinished", "SubmissionStarted", "Succeeded"} <= reasons
    stack.kube.kubectl("wait", "--for=condition=Succeeded", "pb", "--all", "--timeout=10s")

    # No Secret value reaches the operator's logs, Events, status or metrics, nor what ships beside
    # the operator for Grafana and Prometheus (the keys were really sent).
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert "publishing_builds_completed_total" in metrics
    shipped = DASHBOARD.read_text() + ALERTS.read_text()
    seen = stack.operator_logs() + events + stack.kube.kubectl("get", "pb", "-o", "yaml").stdout
    for needle in secret_needles():
        assert needle not in seen
        assert needle not in metrics
        assert needle not in shipped


def secret_needles() -> list[str]:
    """Every Secret value in the examples, and each long line of multi-line ones (PEM bodies)."""
    needles: list[str] = []
    for doc in load_yaml(EXAMPLES_DIR / "secrets.yaml"):
        for key, value in (doc.get("stringData") or {}).items():
            if key in ("key-id", "issuer-id", "key-alias"):
                continue  # identifiers, not secrets
            text = str(value)
            needles.append(text.strip())
            needles += [
                line.strip() for line in text.replace("\\n", "\n").splitlines() if len(line.strip()) >= 24
            ]
    # PEM armour and JSON field lines ("type": ...) are not secret; the key material is.
    secret = [n for n in needles if n and "PRIVATE KEY-----" not in n and not n.startswith(('"', "{", "}"))]
    assert len(secret) > 10
    return secret


async def test_build_only_github_resource_succeeds_without_submission(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.apply(publishing_build("build-only", platform="android", submit=False))
    port, health_port = free_port(), free_port()
    stack.operator(metrics_port=str(port), health_port=str(health_port))
    obj = await stack.wait(
        "build-only",
        lambda o: (o["metadata"].get("labels") or {}).get("publishing.dev/result") == "succeeded",
    )
    assert phase(obj) == "Succeeded"
    assert stack.submissions() == []
    assert len(stack.builds()) == 1

    # The same story in Prometheus, without resource names as labels.
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'publishing_builds_started_total{platform="android"} 1.0' in metrics
    assert 'publishing_builds_completed_total{platform="android",result="succeeded"} 1.0' in metrics
    assert 'publishing_resources{phase="Succeeded"} 1.0' in metrics
    assert "publishing_expo_requests_total" in metrics
    assert "build-only" not in metrics and obj["metadata"]["uid"] not in metrics

    # The log keeps what a person wants to read: no line per watch event, none per probe.
    async with httpx.AsyncClient() as client:
        for _ in range(3):
            assert (await client.get(f"http://127.0.0.1:{health_port}/healthz")).status_code == 200
    log = stack.operator_logs()
    assert "phase Building -> Succeeded" in log
    assert "Handler 'on_event' succeeded" not in log
    assert "Activity 'expo_circuit' succeeded" not in log and "Activity 'workers' succeeded" not in log


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_missing_secret_waits_pending_then_proceeds(stack: Stack) -> None:
    secrets = {d["metadata"]["name"]: d for d in load_yaml(EXAMPLES_DIR / "secrets.yaml")}
    stack.apply(secrets["expo-robot"])  # the App Store Connect key Secret is missing
    stack.apply(publishing_build("needs-asc-key"))
    stack.operator()

    pending = await stack.wait(
        "needs-asc-key", lambda o: phase(o) == "Pending" and "conditions" in o["status"]
    )
    cred = condition(pending, "CredentialsReady")
    assert (cred["status"], cred["reason"]) == ("False", "SecretNotFound")
    assert '"asc-api-key"' in cred["message"]
    assert stack.builds() == [], "no EAS call before the credentials are valid"
    described = stack.kube.kubectl("describe", "pb", "needs-asc-key").stdout
    assert "SecretNotFound" in described

    stack.apply(secrets["asc-api-key"])
    done = await stack.wait_phase("needs-asc-key", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    assert condition(done, "CredentialsReady")["status"] == "True"


@pytest.mark.parametrize(
    ("platform", "secret", "key", "bad_value", "expected"),
    [
        (
            "ios",
            "asc-api-key",
            "private-key",
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
            "private-key",
        ),
        (
            "android",
            "play-publisher",
            "service-account.json",
            '{"type": "service_account", "client_email": "x@y"}',
            "service-account.json",
        ),
    ],
)
async def test_malformed_store_keys_are_refused_before_any_eas_call(
    stack: Stack, platform: str, secret: str, key: str, bad_value: str, expected: str
) -> None:
    secrets = {d["metadata"]["name"]: d for d in load_yaml(EXAMPLES_DIR / "secrets.yaml")}
    broken = secrets[secret]
    broken["stringData"][key] = bad_value
    stack.apply(secrets["expo-robot"], broken)
    stack.apply(publishing_build("bad-key", platform=platform))
    stack.operator()

    pending = await stack.wait("bad-key", lambda o: phase(o) == "Pending" and "conditions" in o["status"])
    cred = condition(pending, "CredentialsReady")
    assert (cred["status"], cred["reason"]) == ("False", "InvalidCredential")
    assert f'"{secret}"' in cred["message"] and f'"{expected}"' in cred["message"]
    assert bad_value.splitlines()[0][:12] not in cred["message"] or "BEGIN" in bad_value
    assert stack.builds() == [] and stack.expo.state.calls_of("createIosBuild") == []
    assert stack.expo.state.calls_of("createGitHubBuild") == []


async def test_rate_limit_never_exceeded_and_everyone_finishes(stack: Stack) -> None:
    stack.apply_example_secrets()
    names = [f"burst-{i:02d}" for i in range(12)]
    stack.apply(*(publishing_build(name, platform="android", submit=False) for name in names))
    window = 4.0
    stack.operator(start_rate=f"5/{window:g}s")

    saw_rate_limited = False
    for name in names:
        obj = await stack.wait(
            name,
            lambda o: phase(o) in ("Succeeded", "Failed") or condition_reason(o) == "RateLimited",
            timeout=60,
        )
        saw_rate_limited |= condition_reason(obj) == "RateLimited"
    for name in names:
        assert phase(await stack.wait_phase(name, "Succeeded", "Failed", timeout=90)) == "Succeeded"
    assert saw_rate_limited, "some resources waited as RateLimited"

    created = sorted(parse_time(b["createdAt"]) for b in stack.builds())
    assert len(created) == 12
    for i, start in enumerate(created):
        in_window = [t for t in created[i:] if t - start < timedelta(seconds=window)]
        assert len(in_window) <= 5, f"{len(in_window)} builds started within {window}s from {start}"


def finished_and_tidied(obj: dict[str, Any]) -> bool:
    """Finished, with the result label on and the finalizer off (a separate write after the status)."""
    meta = obj["metadata"]
    return (
        phase(obj) in ("Succeeded", "Failed", "Cancelled")
        and "publishing.dev/result" in (meta.get("labels") or {})
        and "publishing.dev/eas-work" not in (meta.get("finalizers") or [])
    )


def condition_reason(obj: dict[str, Any] | None) -> str | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Succeeded":
            return str(cond.get("reason"))
    return None


async def test_crash_while_a_github_create_is_in_flight_never_creates_a_second_build(stack: Stack) -> None:
    """SIGKILL while the GitHub create call is in flight (it never reached Expo). The restarted
    operator cannot tell that from an accepted request whose build has not appeared yet (Expo's
    receipt latency is unknown), so it waits START_CONFIRM_TIMEOUT, creates nothing, and ends the
    attempt Unconfirmed, saying what to check; a manual retry then builds once."""
    stack.apply_example_secrets()
    stack.fault(calls=[{"operation": "createGitHubBuild", "latency": 3.0, "drop": "before"}])
    operator = stack.operator()
    stack.apply(publishing_build("crash-early"))
    starting = await stack.wait("crash-early", lambda o: condition_reason(o) == "BuildStarting")
    key = starting["status"]["build"]["requestKey"]
    await stack.until(lambda: len(stack.expo.state.calls_of("createGitHubBuild")) == 1, what="create call")
    operator.kill()
    assert stack.builds() == []

    stack.operator()
    confirming = await stack.wait("crash-early", lambda o: condition_reason(o) == "Confirming", timeout=60)
    assert "Confirming whether EAS started the build" in confirming["status"]["message"]
    done = await stack.wait_phase("crash-early", "Succeeded", "Failed", timeout=90)
    assert condition_reason(done) == "Unconfirmed"
    assert key in done["status"]["message"] and "publishing.dev/retry" in done["status"]["message"]
    assert stack.builds() == [] and len(stack.expo.state.calls_of("createGitHubBuild")) == 1

    stack.kube.kubectl("annotate", "pb", "crash-early", "publishing.dev/retry=after-checking-expo")
    again = await stack.wait_phase("crash-early", "Succeeded", timeout=90)
    (build,) = stack.builds()
    assert build["message"] == again["status"]["build"]["requestKey"] != key  # a new, never used key


async def test_crash_while_an_archive_create_is_in_flight_creates_once_under_a_new_key(
    stack: Stack, archive_server: ArchiveServer
) -> None:
    """SIGKILL while an archive build's create call is in flight (it never reached Expo): the key is
    given up only once no create for it can still arrive, then the build is requested once."""
    stack.apply_example_secrets()
    doc = archive_example(archive_server)
    name = doc["metadata"]["name"]
    stack.fault(calls=[{"operation": "createAndroidBuild", "latency": 3.0, "drop": "before"}])
    operator = stack.operator(archive_allowed_hosts=archive_server.host_port)
    stack.apply(doc)
    await stack.until(lambda: len(stack.expo.state.calls_of("createAndroidBuild")) == 1, what="create call")
    operator.kill()
    before = await stack.get(name)
    assert before is not None
    key = before["status"]["build"]["requestKey"]

    stack.operator(archive_allowed_hosts=archive_server.host_port)
    done = await stack.wait_phase(name, "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    (build,) = stack.builds()
    assert build["message"] == done["status"]["build"]["requestKey"] != key


async def test_crash_after_build_created_before_id_recorded(
    stack: Stack, archive_server: ArchiveServer
) -> None:
    """SIGKILL after EAS created the build but before its id reached status: adopted, not duplicated."""
    stack.apply_example_secrets()
    doc = archive_example(archive_server)
    name = doc["metadata"]["name"]
    # The mutation is applied, then the answer is delayed: the operator dies before reading it.
    stack.fault(calls=[{"operation": "createAndroidBuild", "latency": 3.0}])
    operator = stack.operator(archive_allowed_hosts=archive_server.host_port)
    stack.apply(doc)
    await stack.until(lambda: len(stack.expo.state.calls_of("createAndroidBuild")) == 1, what="create call")
    operator.kill()
    await stack.until(lambda: len(stack.builds()) == 1, what="the build to exist on EAS")
    obj = await stack.get(name)
    assert obj is not None and "id" not in obj["status"]["build"]

    stack.operator(archive_allowed_hosts=archive_server.host_port)
    done = await stack.wait_phase(name, "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    assert len(stack.builds()) == 1
    assert done["status"]["build"]["id"] == stack.builds()[0]["id"]
    assert len(stack.expo.state.calls_of("createAndroidBuild")) == 1


async def test_crash_before_github_build_is_stamped(stack: Stack) -> None:
    """A GitHub build exists but the request key never reached its message: found by ref and time."""
    stack.apply_example_secrets()
    stack.fault(calls=[{"operation": "updateBuildMetadata", "latency": 3.0, "drop": "before"}])
    operator = stack.operator()
    stack.apply(publishing_build("crash-stamp", submit=False))
    await stack.until(lambda: len(stack.expo.state.calls_of("updateBuildMetadata")) == 1, what="stamp call")
    operator.kill()
    assert len(stack.builds()) == 1 and stack.builds()[0]["message"] is None

    stack.operator()
    done = await stack.wait_phase("crash-stamp", "Succeeded", "Failed", timeout=90)
    assert phase(done) == "Succeeded"
    key = done["status"]["build"]["requestKey"]
    await stack.until(lambda: [b["message"] for b in stack.builds()] == [key], what="the stamped build")


async def test_restart_in_flight_resumes_the_same_builds(stack: Stack) -> None:
    stack.apply_example_secrets()
    stack.expo.state.configure({"build_seconds": 2000.0})  # ~10 s of real time: long enough to restart
    stack.apply(publishing_build("resume-ios"), publishing_build("resume-android", platform="android"))
    operator = stack.operator()
    before = {}
    for name in ("resume-ios", "resume-android"):
        before[name] = await stack.wait(
            name, lambda o: bool(((o.get("status") or {}).get("build") or {}).get("id"))
        )
    operator.signal(signal.SIGTERM)
    assert operator.wait(timeout=60) == 0
    creates_before = len(stack.expo.state.calls_of("createGitHubBuild"))

    stack.operator()
    for name in ("resume-ios", "resume-android"):
        done = await stack.wait_phase(name, "Succeeded", "Failed", timeout=90)
        assert phase(done) == "Succeeded"
        assert done["status"]["build"]["id"] == before[name]["status"]["build"]["id"]
    assert len(stack.builds()) == 2
    assert len(stack.expo.state.calls_of("createGitHubBuild")) == creates_before == 2
    events = yaml.safe_load(stack.kube.kubectl("get", "events", "-o", "yaml").stdout)["items"]
    started = [e for e in events if e["reason"] == "BuildStarted"]
    assert len(started) == 2, "no step ran twice"
