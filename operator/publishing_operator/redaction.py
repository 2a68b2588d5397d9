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
    """The values of the resources being worked on, by uid; called on every log line."""

    def __init__(self) -> None:
        self._by_owner: dict[str, frozenset[str]] = {}
        self._needles: list[str] = []
        self._lock = threading.Lock()  # log lines may come from threads (to_thread, libraries)

    def register(self, owner: str, values: Iterable[str]) -> None:
        values = frozenset(values)
        with self._lock:
            if self._by_owner.get(owner) == values:
                return
            self._by_owner[owner] = values
            self._rebuild()

    def forget(self, owner: str) -> None:
        with self._lock:
            if self._by_owner.pop(owner, None) is not None:
                self._rebuild()

    def _rebuild(self) -> None:
        self._needles = redaction_needles(set().union(*self._by_owner.values()))

    def __call__(self, text: str) -> str:
        needles = self._needles
        return scrub(text, needles) if needles else text


SCRUBBER = SecretScrubber()
