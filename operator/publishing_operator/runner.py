"""`publishing-operator run`: the production entry point (in-cluster config or $KUBECONFIG).

`operate()` is also what the sandbox and the tests embed: the same operator, in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

import kopf

from publishing_operator import __version__
from publishing_operator.adapters.login import KubeLogin, LoginError, check_access
from publishing_operator.health import Health, serve_health
from publishing_operator.logs import setup_logging
from publishing_operator.metrics import Metrics, serve_metrics
from publishing_operator.settings import (
    Settings,
    SettingsError,
    add_flags,
    flags_from_args,
    load_settings,
    unknown_settings,
)

log = logging.getLogger("publishing_operator")
ASYNCGEN_CLOSE_ERROR = "an error occurred during closing of asynchronous generator"  # asyncio's words


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", metavar="PATH", help="kubeconfig to use (default: in-cluster, $KUBECONFIG)"
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_flags(parser)


async def operate(
    settings: Settings,
    *,
    kubeconfig: str | None = None,
    stop: asyncio.Event | None = None,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> None:
    """Run the operator until `stop` is set (or SIGTERM / SIGINT when running in the main thread).

    Raises LoginError before anything starts when the credentials cannot work (no kubeconfig,
    a plugin that fails, a 401) or the API is still not usable after a minute of retrying."""
    from publishing_operator.handlers import registry  # kopf decorators register on import

    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig
    login = KubeLogin(kubeconfig)
    await check_access(login, settings.namespaces)
    metrics = metrics or Metrics()
    health = health or Health()
    metrics.watch_health(health)
    # kopf raises this flag once its startup handlers have finished: the operator is ready.
    started = asyncio.Event()
    # The probes are ours (health.py), not kopf's liveness endpoint, which cannot fail on a condition.
    # Both ports bind before kopf starts: a taken port fails at once, not later.
    async with serve_metrics(metrics, settings.metrics_port), serve_health(health, settings.health_port):
        readiness = asyncio.create_task(_ready_when(started, health), name="readiness")
        try:
            await kopf.operator(
                registry=registry,
                memo=kopf.Memo(settings=settings, metrics=metrics, health=health, login=login),
                standalone=True,
                clusterwide=not settings.namespaces,
                namespaces=list(settings.namespaces),
                stop_flag=stop,
                ready_flag=started,
            )
        finally:
            health.note_stopping()
            readiness.cancel()


async def _ready_when(started: asyncio.Event, health: Health) -> None:
    await started.wait()
    health.note_ready()


async def _run(settings: Settings, kubeconfig: str | None) -> None:
    # For the loop's whole life: the watch stream is closed after `operate` returns.
    asyncio.get_running_loop().set_exception_handler(loop_exception)
    await operate(settings, kubeconfig=kubeconfig)


def loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The event loop's report of an error nobody awaited, except one known kopf shutdown race.

    When the operator stops just as a watch event arrives, kopf's watcher task can be cancelled
    while its watch stream (an async generator) waits at a `yield`; the loop closes the stream at
    exit, and kopf's cleanup then awaits its pause waiter inside the close, which Python refuses
    ("generator didn't stop after athrow()"). Nothing is lost: the operator has already stopped.
    That case is one debug line; everything else goes to asyncio's default handler."""
    stream = context.get("asyncgen")
    code = getattr(stream, "ag_code", None)
    if (
        str(context.get("message", "")).startswith(ASYNCGEN_CLOSE_ERROR)
        and getattr(code, "co_name", "") == "infinite_watch"
        and f"{os.sep}kopf{os.sep}" in getattr(code, "co_filename", "")
    ):
        log.debug("kopf's watch stream could not close cleanly at shutdown: %s", context.get("exception"))
        return
    loop.default_exception_handler(context)


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ, flags_from_args(args))
    except SettingsError as exc:
        print(f"publishing-operator: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_format, logging.DEBUG if args.verbose else logging.INFO)
    log.info("publishing-operator %s starting", __version__)
    for warning in unknown_settings(os.environ):
        log.warning("%s", warning)
    try:
        asyncio.run(_run(settings, args.kubeconfig))
    except LoginError as exc:
        log.error("cannot log in to Kubernetes: %s", exc)  # one line, no traceback: the cause is the input
        return 1
    log.info("publishing-operator stopped")
    return 0
