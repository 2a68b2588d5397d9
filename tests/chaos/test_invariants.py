"""The chaos invariants catch what they claim to catch (a checker that never fails proves nothing)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.chaos import invariants as inv


def pb(name: str, uid: str, max_attempts: int = 3, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": uid},
        "spec": {"retry": {"maxAttempts": max_attempts}},
        "status": status,
    }


def w(obj: dict[str, Any], type_: str = "MODIFIED") -> inv.Written:
    return inv.Written(type_, obj)


def build(id_: str, message: str | None, status: str = "FINISHED") -> dict[str, Any]:
    return {"id": id_, "message": message, "status": status, "createdAt": "t", "gitRef": "main"}


BUILDING = {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.1"}}


@pytest.mark.parametrize(
    ("before", "after", "problem"),
    [
        (BUILDING, {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.1", "id": "b1"}}, None),
        (BUILDING, {"phase": "Pending", "attempt": 1}, None),  # the create itself was refused
        ({"phase": "Queued", "attempt": 1}, {"phase": "Pending", "attempt": 1}, None),
        ({"phase": "Building", "attempt": 1}, {"phase": "Queued", "attempt": 2}, None),
        ({"phase": "Queued", "attempt": 2}, {"phase": "Queued", "attempt": 1}, "attempt went down 2 -> 1"),
        ({"phase": "Succeeded", "attempt": 1}, {"phase": "Building", "attempt": 1}, "finished Succeeded"),
        ({"phase": "Failed", "attempt": 3}, {"phase": "Pending", "attempt": 1, "retryRequest": "x"}, None),
        (
            {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.1", "id": "b1"}},
            {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.1", "id": "b2"}},
            "build.id changed within attempt 1: b1 -> b2",
        ),
        (
            {"phase": "Submitting", "attempt": 1, "submission": {"requestKey": "u.1.submit", "id": "s1"}},
            {"phase": "Submitting", "attempt": 2, "submission": {"requestKey": "u.2.submit"}},
            None,
        ),
        # a new claim replaces a key that provably built nothing; never one that built something
        (BUILDING, {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.2"}}, None),
        (
            {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.3"}},
            {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.4"}},
            "build.requestKey u.3 replaced by u.4 though an EAS build carries it",
        ),
        (
            {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.2"}},
            BUILDING,
            "build.requestKey went back within attempt 1: u.2 -> u.1",
        ),
        (
            {"phase": "Building", "attempt": 1, "build": {"requestKey": "u.3"}},
            {"phase": "Pending", "attempt": 1},
            "request key u.3 given up (an EAS build carries it)",
        ),
    ],
)
def test_backwards_follows_the_lifecycle(
    before: dict[str, Any], after: dict[str, Any], problem: str | None
) -> None:
    found = inv.backwards(before, after, built_keys={"u.3"})
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_attempts_above_max_and_backwards_moves_are_reported_per_resource() -> None:
    writes = [
        w(pb("a", "u", phase="Building", attempt=1, build={"requestKey": "u.1", "id": "b1"}), "ADDED"),
        w(pb("a", "u", phase="Pending", attempt=1)),
        w(pb("b", "v", max_attempts=1, phase="Queued", attempt=2)),
    ]
    checks = inv.check_transitions(writes)
    assert sorted(v.invariant for v in checks.violations) == ["attempts", "backwards"]
    assert checks.made["attempts"] == 3 and checks.made["backwards"] == 1


def test_two_builds_for_one_key_an_orphan_and_a_shared_build_are_caught() -> None:
    writes = [
        w(pb("a", "u", phase="Building", attempt=1, build={"requestKey": "u.1", "id": "b1"})),
        w(pb("b", "v", phase="Building", attempt=1, build={"requestKey": "v.1", "id": "b1"})),
    ]
    builds = [build("b1", "u.1"), build("b2", "u.1"), build("b3", None), build("b4", None, "CANCELED")]
    checks = inv.check_builds(builds, writes)
    found = sorted((v.invariant, v.detail.get("build", {}).get("id")) for v in checks.violations)
    assert found == [
        ("one-build-per-key", None),
        ("one-owner-per-build", "b1"),
        ("orphan-build", "b2"),
        ("orphan-build", "b3"),
    ]


def test_two_live_submissions_of_one_build_are_caught() -> None:
    writes = [w(pb("a", "u", phase="Submitting", submission={"id": "s1"}, history=[{"submissionId": "s2"}]))]
    submissions = [
        {"id": "s1", "buildId": "b1", "status": "FINISHED"},
        {"id": "s2", "buildId": "b1", "status": "IN_PROGRESS"},
        {"id": "s3", "buildId": "b1", "status": "ERRORED"},
    ]
    checks = inv.check_submissions(submissions, writes)
    assert sorted(v.invariant for v in checks.violations) == ["live-submissions", "orphan-submission"]


def test_unfinished_stuck_and_wrongly_deleted_resources_are_caught() -> None:
    running = pb("running", "u1", phase="Building")
    stuck = {
        **pb("stuck", "u2", phase="Succeeded"),
        "metadata": {"name": "stuck", "namespace": "ns", "uid": "u2", "deletionTimestamp": "t"},
    }
    pruned_while_running = pb("pruned", "u3", phase="Submitting")
    writes = [w(pruned_while_running), w(pruned_while_running, "DELETED")]
    final = {
        ("ns", "running"): running,
        ("ns", "stuck"): stuck,
        ("ns", "done"): pb("done", "u4", phase="Failed"),
    }
    planned = [("ns", "running"), ("ns", "stuck"), ("ns", "done"), ("ns", "pruned"), ("ns", "user-deleted")]
    checks = inv.check_finished(planned, final, writes, {("ns", "user-deleted")})
    assert sorted(v.resource or "" for v in checks.violations) == ["ns/pruned", "ns/running", "ns/stuck"]


PEM = base64.b64encode(
    b"-----BEGIN PRIVATE KEY-----\n"
    b"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    b"-----END PRIVATE KEY-----\n"
).decode()


def test_secret_values_are_found_wherever_they_leak() -> None:
    secrets = [
        {"stringData": {"token": "fake-token-0123456789abcdef"}},
        {"data": {"private-key": PEM}},
    ]
    needles = inv.secret_needles(secrets)
    assert "fake-token-0123456789abcdef" in needles
    assert any(n.startswith("MIGHAgEAMBMGByqGSM49") for n in needles)  # a line of the decoded PEM
    assert not inv.check_no_secrets(needles, "logs", ["all quiet"]).violations
    leaked = inv.check_no_secrets(needles, "an Event", ["token was fake-token-0123456789abcdef"])
    assert [v.invariant for v in leaked.violations] == ["secret-leak"]


def test_a_traceback_in_any_log_is_caught() -> None:
    checks = inv.check_no_traceback(
        {"a.log": "fine", "b.log": 'x "Traceback (most recent call last):\\n  File'}
    )
    assert [v.what for v in checks.violations] == ["a traceback in b.log"]
