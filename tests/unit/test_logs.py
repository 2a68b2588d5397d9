"""Log lines: JSON with the resource context on every line, or plain text with it appended."""

import json
import logging

from publishing_operator.logs import JsonFormatter, PlainFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "publishing_operator.controller", logging.INFO, __file__, 1, "phase %s", ("Queued",), None
    )
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_the_resource_context() -> None:
    line = json.loads(
        JsonFormatter().format(
            record(
                namespace="apps",
                resource="mobile-ios",
                uid="u-1",
                build_id="b-1",
                attempt=2,
                phase="Building",
            )
        )
    )
    assert line["message"] == "phase Queued"
    assert line["level"] == "info"
    assert {k: line[k] for k in ("namespace", "resource", "uid", "build_id", "attempt", "phase")} == {
        "namespace": "apps",
        "resource": "mobile-ios",
        "uid": "u-1",
        "build_id": "b-1",
        "attempt": 2,
        "phase": "Building",
    }


def test_json_lines_take_kopf_object_references() -> None:
    line = json.loads(JsonFormatter().format(record(k8s_ref={"namespace": "apps", "name": "x", "uid": "u"})))
    assert (line["namespace"], line["resource"], line["uid"]) == ("apps", "x", "u")


def test_plain_lines_append_the_resource() -> None:
    text = PlainFormatter().format(record(namespace="apps", resource="mobile-ios", attempt=1, phase="Queued"))
    assert text.endswith("phase Queued [apps/mobile-ios attempt=1 phase=Queued]")
    assert PlainFormatter().format(record()).endswith("phase Queued")


def test_resolved_secret_values_never_reach_a_log_line() -> None:
    import base64

    from publishing_operator.redaction import SCRUBBER

    token = "expo-token-0a1b2c3d4e5f6a7b"
    SCRUBBER.register("uid-1", [token])
    leaky = record()
    leaky.msg = f"library said: Authorization Bearer {token} / {base64.b64encode(token.encode()).decode()}"
    leaky.args = ()
    try:
        raise RuntimeError(f"request failed for {token}")
    except RuntimeError:
        import sys

        leaky.exc_info = sys.exc_info()
    for formatter in (JsonFormatter(), PlainFormatter()):
        text = formatter.format(leaky)
        assert token not in text
        assert base64.b64encode(token.encode()).decode() not in text
        assert "***" in text
    SCRUBBER.forget("uid-1")
    assert token in JsonFormatter().format(leaky)  # forgotten with its resource: the scrubber stays small
