"""Log lines: JSON (one object per line, for log pipelines) or plain text.

Resource context (namespace, name, uid, build id, attempt, phase) travels as `extra` fields and
appears on every line of a worker. kopf's own per-object loggers carry `k8s_ref`, shown too.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from publishing_operator.redaction import SCRUBBER

CONTEXT_FIELDS = ("namespace", "resource", "uid", "build_id", "attempt", "phase")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            line.setdefault("namespace", ref.get("namespace"))
            line.setdefault("resource", ref.get("name"))
            line.setdefault("uid", ref.get("uid"))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return SCRUBBER(json.dumps(line, default=str))


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = SCRUBBER(super().format(record))
        namespace, resource = getattr(record, "namespace", None), getattr(record, "resource", None)
        if namespace and resource:
            extras = [
                f"{k}={getattr(record, k)}"
                for k in ("build_id", "attempt", "phase")
                if getattr(record, k, None)
            ]
            return f"{text} [{namespace}/{resource}{' ' if extras else ''}{' '.join(extras)}]"
        return text


# Loggers that write a line per request or per handler call at INFO: nothing a person reads.
# Their warnings and errors still show.
QUIET_LOGGERS = (
    "httpx",  # every HTTP request
    "httpcore",
    "aiohttp.access",
    "kopf.objects",  # "Handler 'on_event' succeeded." for every watch event
    "kopf.activities.probe",  # "Activity 'expo_circuit' succeeded." per probe handler, per /healthz
)


def quiet_libraries() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def setup_logging(fmt: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()
