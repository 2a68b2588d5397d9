"""The invariants a chaos run must keep, checked over what was recorded: every write the API server
committed (so deleted resources are judged too), Expo's builds and submissions, the operator's logs,
Events and `/metrics` scrapes. Pure functions: tests/chaos/test_invariants.py feeds them violations.

Backwards, defined from the lifecycle (lifecycle/steps.py, lifecycle/requests.py): within one
attempt a resource moves forward through Pending < Queued < Building < Submitting < finished
(Succeeded, Failed, Cancelled); the only ways back are a new attempt (attempt + 1, back to Queued
or, for a submission retry, Submitting), a manual retry (a new `retryRequest`: Pending, attempt 1),
Queued -> Pending (its credentials became invalid before any EAS work), and Building -> Pending when
the claimed request key provably created nothing (a 401 on the create itself: no EAS build carries
the key). A finished resource stays finished; `attempt` never decreases; within one attempt a build
or submission id, once known, never changes or disappears, and a request key is only replaced by a
higher-numbered one (a new claim) when no EAS build carries the old one; `attempt` never exceeds
`spec.retry.maxAttempts`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FINISHED = frozenset({"Succeeded", "Failed", "Cancelled"})
RANK = {
    None: 0,
    "Pending": 0,
    "Queued": 1,
    "Building": 2,
    "Submitting": 3,
    "Succeeded": 4,
    "Failed": 4,
    "Cancelled": 4,
}
LIVE_SUBMISSION = frozenset({"AWAITING_BUILD", "IN_QUEUE", "IN_PROGRESS", "FINISHED"})  # not ERRORED/CANCELED
CANCELLED_BUILD = frozenset({"CANCELED", "PENDING_CANCEL"})

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    invariant: str  # finished | one-build-per-key | orphan-build | one-owner-per-build | live-submissions |
    #                 backwards | attempts | secret-leak | traceback | operator-exit
    what: str
    resource: str | None = None  # namespace/name
    uid: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        where = f" [{self.resource}]" if self.resource else ""
        return f"{self.invariant}{where}: {self.what}"


@dataclass
class Checks:
    """Violations found and how many individual checks were made, by invariant."""

    violations: list[Violation] = field(default_factory=list)
    made: Counter[str] = field(default_factory=Counter)

    def check(self, invariant: str, ok: bool, violation: Violation | None = None) -> bool:
        self.made[invariant] += 1
        if not ok and violation is not None:
            self.violations.append(violation)
        return ok

    def extend(self, other: Checks) -> None:
        self.violations.extend(other.violations)
        self.made.update(other.made)


@dataclass(frozen=True)
class Written:
    """One committed version of a PublishingBuild (from the API server's event log)."""

    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj

    @property
    def uid(self) -> str:
        return str(self.obj.get("metadata", {}).get("uid", ""))

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata", {})
        return f"{meta.get('namespace')}/{meta.get('name')}"

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.obj.get("status") or {})


def status_of(obj: Obj | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


def by_uid(writes: Iterable[Written]) -> dict[str, list[Written]]:
    grouped: dict[str, list[Written]] = defaultdict(list)
    for written in writes:
        grouped[written.uid].append(written)
    return grouped


# ---- 1. every resource finished, or deleted as asked --------------------------------------------


def check_finished(
    planned: Iterable[tuple[str, str]],
    final: Mapping[tuple[str, str], Obj],
    writes: Sequence[Written],
    deleted_by_user: set[tuple[str, str]],
) -> Checks:
    """A resource still there is finished and not stuck deleting; a resource gone was deleted by the
    user, or was finished when TTL or history retention deleted it."""
    checks = Checks()
    last_before_delete: dict[tuple[str, str], Obj] = {}
    previous: dict[str, Obj] = {}
    for written in writes:
        key = _key(written.obj)
        if written.type == "DELETED":
            last_before_delete[key] = previous.get(written.uid, written.obj)
        previous[written.uid] = written.obj
    for key in planned:
        name = f"{key[0]}/{key[1]}"
        obj = final.get(key)
        if obj is None:
            if key in deleted_by_user:
                checks.check("finished", True)
                continue
            before = last_before_delete.get(key)
            phase = status_of(before).get("phase")
            checks.check(
                "finished",
                phase in FINISHED,
                Violation("finished", f"deleted by the operator while {phase or 'never started'}", name),
            )
            continue
        status = status_of(obj)
        deleting = bool(obj.get("metadata", {}).get("deletionTimestamp"))
        checks.check(
            "finished",
            status.get("phase") in FINISHED and not deleting,
            Violation(
                "finished",
                ("stuck deleting" if deleting else "not finished")
                + f": phase {status.get('phase')}, {status.get('message')!r}",
                name,
                str(obj.get("metadata", {}).get("uid")),
                {"status": status, "finalizers": obj.get("metadata", {}).get("finalizers")},
            ),
        )
    return checks


# ---- 2. at most one EAS build per request key; no orphan; one owner per build --------------------


def tracked_builds(writes: Iterable[Written]) -> dict[str, set[str]]:
    """build id -> the uids whose status ever named it (current build or history)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for written in writes:
        status = written.status
        build = status.get("build") or {}
        if build.get("id"):
            owners[str(build["id"])].add(written.uid)
        for entry in status.get("history") or []:
            if entry.get("buildId"):
                owners[str(entry["buildId"])].add(written.uid)
    return owners


def tracked_submissions(writes: Iterable[Written]) -> set[str]:
    found: set[str] = set()
    for written in writes:
        status = written.status
        if (status.get("submission") or {}).get("id"):
            found.add(str(status["submission"]["id"]))
        for entry in status.get("history") or []:
            if entry.get("submissionId"):
                found.add(str(entry["submissionId"]))
    return found


def request_keys(writes: Iterable[Written]) -> dict[str, str]:
    """build request key -> the name of the resource that wrote it."""
    keys: dict[str, str] = {}
    for written in writes:
        key = (written.status.get("build") or {}).get("requestKey")
        if key:
            keys[str(key)] = written.name
    return keys


def unconfirmed_refs(writes: Iterable[Written]) -> set[tuple[str, str]]:
    """(git ref, platform) of every resource that ended Failed/Unconfirmed: Expo may have started a
    build for it that the operator could not tell from another request's (lifecycle/requests.py)."""
    found: set[tuple[str, str]] = set()
    for written in writes:
        status = written.status
        reasons = {c.get("reason") for c in status.get("conditions") or [] if c.get("type") == "Succeeded"}
        if status.get("phase") == "Failed" and "Unconfirmed" in reasons:
            spec = written.obj.get("spec") or {}
            ref = ((spec.get("source") or {}).get("github") or {}).get("ref")
            platform = str((spec.get("app") or {}).get("platform", "")).upper()
            if ref:
                found.add((str(ref), platform))
    return found


def check_builds(builds: Sequence[Obj], writes: Sequence[Written]) -> Checks:
    """At most one build per request key, none followed by two resources, none untracked. An
    un-stamped build on the ref of a resource that ended Unconfirmed is counted apart: the operator
    said it may exist and created nothing more (by design), but it runs with nobody following it."""
    checks = Checks()
    unconfirmed = unconfirmed_refs(writes)
    owners = tracked_builds(writes)
    keys = request_keys(writes)
    names = {w.uid: w.name for w in writes}
    by_key: dict[str, list[Obj]] = defaultdict(list)
    for build in builds:
        if build.get("message"):
            by_key[str(build["message"])].append(build)
    for key, found in by_key.items():
        checks.check(
            "one-build-per-key",
            len(found) <= 1,
            Violation(
                "one-build-per-key",
                f"{len(found)} EAS builds for request key {key}: "
                + ", ".join(f"{b['id']} ({b['status']}, created {b['createdAt']})" for b in found),
                keys.get(key),
                key.split(".")[0],
                {"key": key, "builds": [dict(b) for b in found]},
            ),
        )
    for build in builds:
        build_id = str(build["id"])
        owned_by = owners.get(build_id, set())
        unstamped_unconfirmed = not build.get("message") and (
            (str(build.get("gitRef")), str(build.get("platform", "")).upper()) in unconfirmed
        )
        invariant = "unconfirmed-orphan" if unstamped_unconfirmed else "orphan-build"
        checks.check(
            invariant,
            bool(owned_by) or build.get("status") in CANCELLED_BUILD,
            Violation(
                invariant,
                f"EAS build {build_id} ({build.get('status')}, message {build.get('message')!r}, ref "
                f"{build.get('gitRef')!r}, created {build.get('createdAt')}) is in no resource's status",
                keys.get(str(build.get("message") or "")),
                detail={"build": dict(build)},
            ),
        )
        checks.check(
            "one-owner-per-build",
            len(owned_by) <= 1,
            Violation(
                "one-owner-per-build",
                f"EAS build {build_id} is followed by {len(owned_by)} resources: "
                + ", ".join(sorted(names.get(uid, uid) for uid in owned_by)),
                detail={"build": dict(build), "owners": sorted(owned_by)},
            ),
        )
    return checks


def check_submissions(submissions: Sequence[Obj], writes: Sequence[Written]) -> Checks:
    checks = Checks()
    tracked = tracked_submissions(writes)
    live: dict[str, list[Obj]] = defaultdict(list)
    for submission in submissions:
        if submission.get("status") in LIVE_SUBMISSION:
            live[str(submission.get("buildId"))].append(submission)
        checks.check(
            "orphan-submission",
            str(submission["id"]) in tracked or submission.get("status") == "CANCELED",
            Violation(
                "orphan-submission",
                f"EAS submission {submission['id']} ({submission.get('status')}) of build "
                f"{submission.get('buildId')} is in no resource's status",
                detail={"submission": dict(submission)},
            ),
        )
    for build_id, found in live.items():
        checks.check(
            "live-submissions",
            len(found) <= 1,
            Violation(
                "live-submissions",
                f"build {build_id} has {len(found)} live or delivered submissions: "
                + ", ".join(f"{s['id']} ({s['status']})" for s in found),
                detail={"submissions": [dict(s) for s in found]},
            ),
        )
    return checks


# ---- 3. no backwards transition; attempts bounded -------------------------------------------------


def check_transitions(writes: Sequence[Written], built_keys: Collection[str] = ()) -> Checks:
    """`built_keys`: the request keys some EAS build carries (a key that built something is never
    given up or replaced)."""
    checks = Checks()
    for uid, history in by_uid(writes).items():
        previous: dict[str, Any] | None = None
        for written in history:
            if written.type == "DELETED":
                continue
            status = written.status
            max_attempts = int(((written.obj.get("spec") or {}).get("retry") or {}).get("maxAttempts", 3))
            attempt = int(status.get("attempt") or 0)
            checks.check(
                "attempts",
                attempt <= max_attempts,
                Violation("attempts", f"attempt {attempt} > maxAttempts {max_attempts}", written.name, uid),
            )
            if previous is not None and previous != status:
                problem = backwards(previous, status, built_keys)
                checks.check(
                    "backwards",
                    problem is None,
                    Violation(
                        "backwards",
                        problem or "",
                        written.name,
                        uid,
                        {"before": _brief(previous), "after": _brief(status)},
                    ),
                )
            previous = status
    return checks


def _key_number(key: Any) -> int:
    """The claim number of a request key: `<uid>.<n>` or `<uid>.<n>.submit`."""
    parts = str(key or "").split(".")
    if parts and parts[-1] == "submit":
        parts = parts[:-1]
    return int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 0


def backwards(
    before: Mapping[str, Any], after: Mapping[str, Any], built_keys: Collection[str] = ()
) -> str | None:
    """Why `before -> after` goes backwards, or None when it is a move the lifecycle allows."""
    p1, p2 = before.get("phase"), after.get("phase")
    a1, a2 = int(before.get("attempt") or 0), int(after.get("attempt") or 0)
    old_build, new_build = before.get("build") or {}, after.get("build") or {}
    if after.get("retryRequest") != before.get("retryRequest") and p2 == "Pending" and a2 <= 1:
        return None  # a manual retry: a fresh attempt budget
    if a2 < a1:
        return f"attempt went down {a1} -> {a2} ({p1} -> {p2})"
    if p1 in FINISHED:
        return None if p2 == p1 else f"finished {p1} -> {p2} (attempt {a1} -> {a2})"
    if a2 > a1:
        return None if RANK[p2] >= RANK["Queued"] else f"new attempt {a2} goes back to {p2}"
    key = old_build.get("requestKey")
    if RANK[p2] < RANK[p1]:
        if p1 == "Queued" and p2 == "Pending":
            return None
        unsent = p1 == "Building" and p2 == "Pending" and not old_build.get("id")
        if unsent and not old_build.get("receiptId") and key not in built_keys:
            return None  # the create itself was refused: the claim provably created nothing
        given_up = f", request key {key} given up" if key and not new_build else ""
        built = " (an EAS build carries it)" if key in built_keys else ""
        return f"{p1} -> {p2} within attempt {a1}{given_up}{built}"
    if p2 in FINISHED | {"Pending", "Queued"}:
        return None
    for block in ("build", "submission"):
        old, new = before.get(block) or {}, after.get(block) or {}
        if old.get("id") and old.get("id") != new.get("id"):
            return f"{block}.id changed within attempt {a1}: {old.get('id')} -> {new.get('id')}"
        old_key, new_key = old.get("requestKey"), new.get("requestKey")
        if old_key and old_key != new_key:
            if new_key and _key_number(new_key) <= _key_number(old_key):
                return f"{block}.requestKey went back within attempt {a1}: {old_key} -> {new_key}"
            if block == "build" and old_key in built_keys:
                return f"build.requestKey {old_key} replaced by {new_key} though an EAS build carries it"
    return None


def _brief(status: Mapping[str, Any]) -> dict[str, Any]:
    build, submission = status.get("build") or {}, status.get("submission") or {}
    return {
        "phase": status.get("phase"),
        "attempt": status.get("attempt"),
        "reason": next(
            (c.get("reason") for c in status.get("conditions") or [] if c.get("type") == "Succeeded"), None
        ),
        "build": {k: build.get(k) for k in ("requestKey", "id", "status") if build.get(k)},
        "submission": {k: submission.get(k) for k in ("requestKey", "id", "status") if submission.get(k)},
        "message": status.get("message"),
    }


# ---- 4. no Secret value anywhere it should not be; no traceback ----------------------------------


def secret_needles(secrets: Iterable[Obj]) -> list[str]:
    """Values of the Secrets (and each long line of multi-line values), as they would leak."""
    import base64

    needles: set[str] = set()
    for secret in secrets:
        values = [str(v) for v in (secret.get("stringData") or {}).values()]
        for raw in (secret.get("data") or {}).values():
            try:
                values.append(base64.b64decode(raw).decode("utf-8", "replace"))
            except ValueError:
                continue
            values.append(str(raw))
        for value in values:
            if len(value.strip()) >= 12:
                needles.add(value.strip())
            for line in value.splitlines():
                line = line.strip().strip('",')
                if len(line) >= 24 and "BEGIN" not in line and "END" not in line:
                    needles.add(line)
    return sorted(needles)


def check_no_secrets(needles: Sequence[str], where: str, texts: Iterable[str]) -> Checks:
    checks = Checks()
    for text in texts:
        for needle in needles:
            found = needle in text
            checks.check(
                "secret-leak",
                not found,
                Violation(
                    "secret-leak",
                    f"a Secret value ({needle[:6]}...) appears in {where}",
                    detail={"excerpt": _excerpt(text, needle)},
                ),
            )
    return checks


_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")


def check_no_traceback(logs: Mapping[str, str]) -> Checks:
    checks = Checks()
    for name, text in logs.items():
        match = _TRACEBACK.search(text)
        checks.check(
            "traceback",
            match is None,
            Violation(
                "traceback",
                f"a traceback in {name}",
                detail={"excerpt": _excerpt(text, match.group())} if match else {},
            ),
        )
    return checks


def _excerpt(text: str, needle: str, around: int = 1500) -> str:
    at = text.find(needle)
    if at < 0:
        return ""
    start = text.rfind("\n", 0, max(0, at - around // 3)) + 1
    return text[start : at + around]


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return (str(meta.get("namespace")), str(meta.get("name")))
