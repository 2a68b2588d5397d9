"""Keeping Secret values out of text: the forms a value can take in a log line, and the scrubber that
every log line passes through.

The code never logs secrets on purpose; this is defence in depth for what it cannot foresee (a
library's exception text, a debug dump). The scrubber holds the values of the resources currently
being worked on, keyed by uid, and forgets a resource's values when its worker ends.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Iterable

REDACTED = "***"
_MIN_REDACT_LEN = 4  # shorter "secrets" would shred every log line they occur in


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in `text` with "***": the value itself, its
    base64 forms, its JSON-escaped form, and each long line of a multi-line value (a PEM body
    quoted line by line). Values shorter than 4 characters are left alone."""
    return scrub(text, redaction_needles(secrets))


def redaction_needles(secrets: Iterable[str]) -> list[str]:
    """Every form of each secret that `redact` replaces, longest first (a value is replaced
    whole before any of its lines)."""
    needles: set[str] = set()
    for secret in secrets:
        if len(secret) < _MIN_REDACT_LEN:
            continue
        raw = secret.encode("utf-8")
        needles.update(
            {
                secret,
                base64.b64encode(raw).decode("ascii"),
                base64.b64encode(raw).decode("ascii").rstrip("="),
                base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
                json.dumps(secret)[1:-1],
            }
        )
        stripped = secret.strip()
        if stripped != secret and len(stripped) >= _MIN_REDACT_LEN:
            needles.add(stripped)
        needles.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= 16)
    return sorted(needles, key=len, reverse=True)


def scrub(text: str, needles: Iterable[str]) -> str:
    """Replace each needle (from `redaction_needles`) in `text` with "***"."""
    for needle in needles:
        if needle in text:
            text = text.replace(needle, REDACTED)
    return text


class SecretScrubber:
    """The values of the resources being worked on, by uid; called on every log line.

    Values are counted across resources (thousands often share one token): registering or
    forgetting a resource costs its own values, and the needles are rebuilt only when a value
    appears or disappears altogether (rebuilding from every resource's values on each change made
    a ramp of N resources cost N^2)."""

    def __init__(self) -> None:
        self._by_owner: dict[str, frozenset[str]] = {}
        self._holders: Counter[str] = Counter()  # value -> how many resources hold it
        self._needles: list[str] = []
        self._lock = threading.Lock()  # log lines may come from threads (to_thread, libraries)

    def register(self, owner: str, values: Iterable[str]) -> None:
        values = frozenset(values)
        with self._lock:
            before = self._by_owner.get(owner)
            if before == values:
                return
            self._by_owner[owner] = values
            self._change(added=values - (before or frozenset()), removed=(before or frozenset()) - values)

    def forget(self, owner: str) -> None:
        with self._lock:
            before = self._by_owner.pop(owner, None)
            if before is not None:
                self._change(added=frozenset(), removed=before)

    def _change(self, *, added: frozenset[str], removed: frozenset[str]) -> None:
        changed = False
        for value in added:
            self._holders[value] += 1
            changed = changed or self._holders[value] == 1
        for value in removed:
            self._holders[value] -= 1
            if self._holders[value] <= 0:
                del self._holders[value]
                changed = True
        if changed:
            self._needles = redaction_needles(self._holders)

    def __call__(self, text: str) -> str:
        needles = self._needles
        return scrub(text, needles) if needles else text


SCRUBBER = SecretScrubber()
