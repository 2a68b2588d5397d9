"""Log lines: JSON with the resource context on every line, or plain text with it appended."""

import json
import logging

from publishing_operator.logs import JsonFormatter, PlainFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "publishing_operator.reconciler", logging.INFO, __file__, 1, "phase %s", ("Queued",), None
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
