"""The operator's event-loop error handler: kopf's watch stream failing to close at shutdown (a
known kopf race, harmless once the operator has stopped) is one debug line; every other unhandled
error is reported as asyncio reports it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from publishing_operator.runner import ASYNCGEN_CLOSE_ERROR, loop_exception


def stream_named(name: str, filename: str) -> AsyncIterator[int]:
    """An async generator whose code says it is `name` in `filename` (as kopf's would)."""
    namespace: dict[str, Any] = {}
    exec(compile(f"async def {name}():\n    yield 1\n", filename, "exec"), namespace)
    factory: Callable[[], AsyncIterator[int]] = namespace[name]
    return factory()


KOPF_WATCHING = os.sep.join(["", "venv", "site-packages", "kopf", "_cogs", "clients", "watching.py"])


class Loop:
    def __init__(self) -> None:
        self.reported: list[dict[str, Any]] = []

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.reported.append(context)


def close_error(stream: AsyncIterator[int]) -> dict[str, Any]:
    return {
        "message": f"{ASYNCGEN_CLOSE_ERROR} {stream!r}",
        "exception": RuntimeError("generator didn't stop after athrow()"),
        "asyncgen": stream,
    }


def test_kopfs_watch_stream_closing_at_shutdown_is_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    loop = Loop()
    with caplog.at_level(logging.DEBUG, logger="publishing_operator"):
        loop_exception(loop, close_error(stream_named("infinite_watch", KOPF_WATCHING)))  # type: ignore[arg-type]
    assert loop.reported == []
    (record,) = [r for r in caplog.records if r.name == "publishing_operator"]
    assert record.levelno == logging.DEBUG and "watch stream" in record.getMessage()


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("infinite_watch", os.sep.join(["", "app", "publishing_operator", "watching.py"])),  # not kopf's
        ("other_stream", KOPF_WATCHING),  # another of kopf's generators
    ],
)
def test_other_errors_are_reported_as_asyncio_reports_them(name: str, filename: str) -> None:
    loop = Loop()
    context = close_error(stream_named(name, filename))
    loop_exception(loop, context)  # type: ignore[arg-type]
    assert loop.reported == [context]


def test_an_unawaited_task_error_is_reported() -> None:
    loop = Loop()
    context = {"message": "Task exception was never retrieved", "exception": ValueError("boom")}
    loop_exception(loop, context)  # type: ignore[arg-type]
    assert loop.reported == [context]


def test_the_handler_fits_the_event_loop() -> None:
    """asyncio accepts it as a loop's exception handler."""
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(loop_exception)
        assert loop.get_exception_handler() is loop_exception
    finally:
        loop.close()
