"""`publishing-operator sandbox`: the whole system on one machine, with no cluster.

Starts the emulated Kubernetes API, the Expo simulator (time-scaled) and the operator in one
process; writes a kubeconfig for kubectl; applies crds/ and examples/ through the API as a user
would; shows the PublishingBuilds live until Ctrl-C or SIGTERM, then stops everything and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from publishing_operator.logs import PlainFormatter, quiet_libraries
from publishing_operator.settings import (
    Settings,
    SettingsError,
    add_flags,
    env_name,
    flags_from_args,
    load_settings,
    unknown_settings,
)
from publishing_testkit.kube_emulator.server import ApplyError, EmulatorHandle, load_manifests, serve_emulator
from publishing_testkit.sandbox.artifacts import serve_artifacts
from publishing_testkit.sandbox.live_table import LiveTable

log = logging.getLogger("publishing_testkit.kube_emulator")

REPO_ROOT = Path(__file__).resolve().parents[3]  # testkit/publishing_testkit/sandbox/command.py
PB_PATH = "/apis/publishing.dev/v1alpha1/publishingbuilds"
DEFAULT_TIME_SCALE = 0.03  # a nominal 10-minute EAS build takes 18 s


def _default_dir(name: str) -> Path:
    """crds/ and examples/ of this checkout; else of the current directory (an installed package)."""
    candidate = REPO_ROOT / name
    return candidate if candidate.is_dir() else Path.cwd() / name


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run an emulated Kubernetes API, the Expo simulator and the operator in this process, no cluster "
        "needed. Applies crds/ and examples/, then shows the PublishingBuilds live until Ctrl-C. "
        "Use the printed kubectl command from another terminal."
    )
    where = parser.add_argument_group("sandbox")
    where.add_argument(
        "--host", default="127.0.0.1", help="address the emulated API listens on (default 127.0.0.1)"
    )
    where.add_argument(
        "--port", type=int, default=0,
        help="port of the emulated API; 0 picks a free one (the kubeconfig gets it) (default 0)",
    )  # fmt: skip
    where.add_argument(
        "--kubeconfig-out", metavar="PATH", type=Path, default=Path(".sandbox/kubeconfig"),
        help="where to write the kubeconfig for kubectl (default .sandbox/kubeconfig)",
    )  # fmt: skip
    where.add_argument(
        "--crds", metavar="DIR", type=Path, default=_default_dir("crds"),
        help="CRD manifests applied first (default: crds/ of this checkout)",
    )  # fmt: skip
    where.add_argument(
        "--examples", metavar="DIR", type=Path, default=_default_dir("examples"),
        help="manifests applied after the CRDs, e.g. Secrets and PublishingBuilds (default: examples/)",
    )  # fmt: skip
    where.add_argument("--no-examples", action="store_true", help="apply the CRDs only")
    where.add_argument(
        "--tls", action="store_true",
        help="serve the API over HTTPS with a throwaway CA (put in the kubeconfig), like a real cluster",
    )  # fmt: skip
    where.add_argument(
        "--time-scale", type=float, default=DEFAULT_TIME_SCALE,
        help=f"real seconds per simulated Expo second (default {DEFAULT_TIME_SCALE}: builds take < 1 minute)",
    )  # fmt: skip
    where.add_argument("--no-operator", action="store_true", help="serve the API and the simulator only")
    where.add_argument(
        "--no-table", action="store_true", help="no live table: print changes as lines (for scripts)"
    )
    where.add_argument(
        "--log-file", metavar="PATH", type=Path, default=Path(".sandbox/operator.log"),
        help="where the operator's log goes (default .sandbox/operator.log)",
    )  # fmt: skip
    add_flags(parser)


# Stands for the simulator's URL while the flags are checked, before the simulator listens.
SIMULATOR_URL_PLACEHOLDER = "http://127.0.0.1:1/graphql"


def _sandbox_env(environ: Mapping[str, str], *, own_simulator: bool) -> dict[str, str]:
    """Sandbox defaults under the user's environment: no fixed ports, plain logs; against the
    sandbox's own (time-scaled, loopback) simulator also fast polling, below the production floors."""
    defaults = {
        env_name("metrics_port"): "0",
        env_name("health_port"): "0",
        env_name("log_format"): "plain",
    }
    if own_simulator:
        defaults |= {
            env_name("expo_simulator"): "true",
            env_name("poll_build"): "2s",
            env_name("poll_submission"): "2s",
        }
    return {**defaults, **{key: value for key, value in environ.items() if value != ""}}


def _sandbox_settings(args: argparse.Namespace, expo_url: str, archive_host: str = "") -> Settings:
    """The operator's settings: the sandbox's simulator at `expo_url` unless --expo-api-url says
    otherwise; archive downloads allowed from the sandbox's own tarball host."""
    flags = flags_from_args(args)
    own_simulator = flags.get("expo_api_url") is None
    if own_simulator:
        flags["expo_api_url"] = expo_url
    env = _sandbox_env(os.environ, own_simulator=own_simulator)
    # The sample tarballs are served on loopback: allow exactly that host:port (nothing else local).
    allowed = flags.get("archive_allowed_hosts") or env.get(env_name("archive_allowed_hosts"), "")
    flags["archive_allowed_hosts"] = ",".join(part for part in (allowed, archive_host) if part) or None
    return load_settings(env, flags)


def _robot_tokens(examples: Path) -> set[str]:
    """Expo tokens in the examples' Secrets (the simulator accepts exactly those)."""
    tokens: set[str] = set()
    if not examples.is_dir():
        return tokens
    for manifest in load_manifests(examples):
        if manifest.get("kind") == "Secret":
            token = (manifest.get("stringData") or {}).get("token")
            if isinstance(token, str) and token:
                tokens.add(token)
    return tokens


class _NotInMainThread(logging.Filter):
    """kopf warns that it ignores OS signals when not in the main thread: the sandbox runs it in a
    thread on purpose (OperatorThread), so the warning would only worry the reader."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("OS signals are ignored")


def _setup_logging(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(PlainFormatter())
    handler.addFilter(_NotInMainThread())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    quiet_libraries()


@contextlib.asynccontextmanager
async def _simulator(args: argparse.Namespace, tokens: set[str]) -> AsyncIterator[tuple[str, str]]:
    """Yields (GraphQL URL, a line for the banner)."""
    from publishing_testkit.expo_simulator.server import serve_simulator
    from publishing_testkit.expo_simulator.state import SimulatorConfig

    config = SimulatorConfig(time_scale=args.time_scale)
    async with serve_simulator(host=args.host, port=0, tokens=tokens or None, config=config) as sim:
        url = f"{sim.url}/graphql"
        yield (
            url,
            f"{url}  (time scale {args.time_scale:g}: a 10-minute build takes {600 * args.time_scale:.0f} s)",
        )


class OperatorThread:
    """The operator on its own event loop in a thread.

    kopf installs its own SIGINT/SIGTERM handlers when it runs in the main thread, which would
    take Ctrl-C away from the sandbox; in a thread it leaves signals alone, and a hung shutdown
    cannot block the sandbox's exit.
    """

    def __init__(self, settings: Settings, kubeconfig: Path) -> None:
        self.settings = settings
        self._kubeconfig = kubeconfig
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self, timeout: float) -> bool:
        """Ask the operator to stop; False if it did not stop in time (the thread is a daemon)."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._operate())
        except BaseException as exc:  # reported by the sandbox; the log has the traceback
            log.exception("the operator stopped with an error")
            self.error = exc
        finally:
            self._started.set()

    async def _operate(self) -> None:
        from publishing_operator.runner import operate

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        await operate(self.settings, kubeconfig=str(self._kubeconfig), stop=self._stop)


def _start_operator(
    args: argparse.Namespace, expo_url: str, kubeconfig: Path, archive_host: str
) -> tuple[OperatorThread | None, str]:
    if args.no_operator:
        return None, "off (--no-operator)"
    from publishing_operator.runner import operate

    del operate  # kopf loads here, before start() gives the thread at most 10 s to reach its loop
    settings = _sandbox_settings(args, expo_url, archive_host)
    for warning in unknown_settings(os.environ):
        log.warning("%s", warning)
    operator = OperatorThread(settings, kubeconfig)
    operator.start()
    return operator, f"running, Expo API {settings.expo_api_url} (log: {args.log_file})"


async def _list_builds(session: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with session.get(PB_PATH) as response:
        if response.status != 200:
            return []
        body = await response.json()
        return list(body.get("items") or [])


def _banner(handle: EmulatorHandle, kubeconfig: Path, lines: dict[str, str]) -> str:
    shown = os.path.relpath(kubeconfig) if not kubeconfig.is_absolute() else str(kubeconfig)
    text = [
        "publishing-operator sandbox: an emulated Kubernetes API, the Expo simulator and the operator",
        f"  Kubernetes API  {handle.url}  (kubeconfig: {shown})",
        *[f"  {name:<14}  {value}" for name, value in lines.items()],
        "",
        f"  kubectl --kubeconfig {shown} get pb",
        "  Ctrl-C stops everything.",
    ]
    return "\n".join(text)


async def run_sandbox(args: argparse.Namespace, out: TextIO, stop: asyncio.Event) -> int:
    _setup_logging(args.log_file)
    tokens = set() if args.no_examples else _robot_tokens(args.examples)
    lines: dict[str, str] = {}
    async with (
        serve_emulator(host=args.host, port=args.port, tls=args.tls) as handle,
        _simulator(args, tokens) as (expo_url, simulator_line),
        serve_artifacts() as artifacts,
    ):
        kubeconfig = handle.write_kubeconfig(args.kubeconfig_out)
        lines["Expo simulator"] = simulator_line
        try:
            crds = await handle.apply(load_manifests(args.crds)) if args.crds.exists() else []
            examples = [] if args.no_examples or not args.examples.exists() else load_manifests(args.examples)
            examples = [artifacts.localize(manifest) for manifest in examples]
            await handle.apply(examples)
        except ApplyError as exc:
            print(f"publishing-operator sandbox: could not apply the manifests: {exc}", file=sys.stderr)
            return 1
        kinds: dict[str, int] = {}
        for manifest in [*crds, *examples]:
            kinds[manifest["kind"]] = kinds.get(manifest["kind"], 0) + 1
        lines["Applied"] = ", ".join(f"{count} {kind}" for kind, count in kinds.items()) or "nothing"
        if artifacts.files:
            lines["Archive host"] = f"{artifacts.url}  (sample project tarballs for archive-source examples)"
        try:
            archive_host = urlsplit(artifacts.url).netloc
            operator, lines["Operator"] = _start_operator(args, expo_url, kubeconfig, archive_host)
        except SettingsError as exc:
            print(f"publishing-operator sandbox: {exc}", file=sys.stderr)
            return 2
        banner = _banner(handle, kubeconfig, lines)
        interactive = not args.no_table and out.isatty()
        if not interactive:
            out.write(banner + "\n\n")
            out.flush()
        table = LiveTable(out, banner, interactive=interactive)
        try:
            await _watch_until_stopped(handle, table, stop, operator)
        finally:
            if operator is not None:
                grace = operator.settings.shutdown_grace.total_seconds()
                stopped = await asyncio.to_thread(operator.stop, grace + 5)
                if not stopped:
                    out.write("publishing-operator sandbox: the operator did not stop in time; leaving it\n")
    out.write("publishing-operator sandbox: stopped\n")
    out.flush()
    return 0


async def _watch_until_stopped(
    handle: EmulatorHandle,
    table: LiveTable,
    stop: asyncio.Event,
    operator: OperatorThread | None,
) -> None:
    reported = False
    async with handle.client_session() as session:
        while not stop.is_set():
            table.update(await _list_builds(session))
            if operator is not None and operator.done and not reported:
                reported = True
                table.notice(f"the operator stopped: {operator.error!r} (see the log)")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    return await run_sandbox(args, sys.stdout, stop)


def main(args: argparse.Namespace) -> int:
    if args.time_scale <= 0:
        print("publishing-operator sandbox: --time-scale must be greater than 0", file=sys.stderr)
        return 2
    try:
        _sandbox_settings(args, SIMULATOR_URL_PLACEHOLDER)
    except SettingsError as exc:
        print(f"publishing-operator sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(args))
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        print(
            f"publishing-operator sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 1
