"""Redaction: every form a Secret value can take in text, and the per-resource log scrubber."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from publishing_operator.redaction import REDACTED, SecretScrubber, redact


def test_redacts_values_and_their_encodings() -> None:
    token = "expo_token_abcdef0123456789"
    b64 = base64.b64encode(token.encode()).decode()
    text = f"auth failed for {token}; header was Basic {b64}; url-safe {b64.rstrip('=')}"
    out = redact(text, [token])
    assert token not in out
    assert b64.rstrip("=") not in out
    assert out == f"auth failed for {REDACTED}; header was Basic {REDACTED}; url-safe {REDACTED}"


def test_redacts_pem_whole_json_escaped_and_line_by_line() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    body_lines = [line for line in pem.splitlines() if not line.startswith("-----")]
    document = json.dumps({"private_key": pem})
    texts = [f"key: {pem}", f"payload {document}", f"parse error near {body_lines[1]!r}"]
    for text in texts:
        out = redact(text, [pem])
        for line in body_lines:
            assert line not in out, text
        assert REDACTED in out


def test_redact_leaves_short_and_empty_values_and_other_text_alone() -> None:
    assert redact("a b c abc", ["", "a", "abc"]) == "a b c abc"
    assert redact("nothing secret here", ["expo_token_abcdef0123456789"]) == "nothing secret here"


def test_redact_prefers_the_longest_match() -> None:
    long, short = "secret-part-one-and-part-two", "secret-part-one"
    assert redact(f"{long} / {short}", [short, long]) == f"{REDACTED} / {REDACTED}"


def test_the_scrubber_forgets_a_resource_but_keeps_values_another_still_uses() -> None:
    scrubber = SecretScrubber()
    shared, own = "shared-token-0123456789", "own-key-abcdefghijkl"
    scrubber.register("a", [shared, own])
    scrubber.register("b", [shared])
    assert scrubber(f"{shared} {own}") == f"{REDACTED} {REDACTED}"
    scrubber.forget("a")
    assert scrubber(f"{shared} {own}") == f"{REDACTED} {own}"
    scrubber.forget("b")
    scrubber.forget("b")  # twice is harmless
    assert scrubber(f"{shared} {own}") == f"{shared} {own}"


def test_a_value_shared_by_many_resources_is_prepared_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ramp of N resources on one token must not cost N^2: the needles are rebuilt only when a
    value appears or disappears altogether."""
    from publishing_operator import redaction

    rebuilt = 0
    real = redaction.redaction_needles

    def counting(secrets: Iterable[str]) -> list[str]:
        nonlocal rebuilt
        rebuilt += 1
        return real(secrets)

    monkeypatch.setattr(redaction, "redaction_needles", counting)
    scrubber = SecretScrubber()
    token = "shared-token-0123456789"
    for i in range(1000):
        scrubber.register(f"uid-{i}", [token])
    assert rebuilt == 1
    assert scrubber(token) == REDACTED
    for i in range(999):
        scrubber.forget(f"uid-{i}")
    assert rebuilt == 1 and scrubber(token) == REDACTED
    scrubber.forget("uid-999")
    assert rebuilt == 2 and scrubber(token) == token


def test_a_resource_whose_values_change_keeps_only_the_new_ones() -> None:
    scrubber = SecretScrubber()
    old, new = "old-token-0123456789", "new-token-0123456789"
    scrubber.register("a", [old])
    scrubber.register("a", [new])
    assert scrubber(f"{old} {new}") == f"{old} {REDACTED}"
