"""`publishing-operator expo-simulator`: serve the Expo API simulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from publishing_testkit.expo_simulator.server import serve_simulator
from publishing_testkit.expo_simulator.state import SimulatorConfig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on, 0 = any free (default 8765)"
    )
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help="accepted bearer token (repeatable); without any, every non-empty token is accepted",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="real seconds per simulated second, e.g. 0.01 turns a 600 s build into 6 s (default 1)",
    )


async def _serve(args: argparse.Namespace) -> None:
    config = SimulatorConfig(time_scale=args.time_scale)
    tokens = set(args.tokens) if args.tokens else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with serve_simulator(host=args.host, port=args.port, tokens=tokens, config=config) as sim:
        print(f"Expo simulator: GraphQL at {sim.graphql_url}, admin at {sim.url}/__simulator/", flush=True)
        await stop.wait()


def main(args: argparse.Namespace) -> int:
    if args.time_scale <= 0:
        print("publishing-operator expo-simulator: --time-scale must be greater than 0", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(
            f"publishing-operator expo-simulator: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0
