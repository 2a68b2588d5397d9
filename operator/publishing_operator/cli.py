"""`publishing-operator run | sandbox | expo-simulator | version`.

Each subcommand lives in its own module exposing `configure(parser)` and `main(args) -> int`;
modules are imported lazily so `version` and `--help` stay fast and the production image does not
need the sandbox extras.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from publishing_operator import __version__

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("publishing_operator.runner", "run the operator against a cluster (kubeconfig or in-cluster)"),
    "sandbox": (
        "publishing_operator.sandbox.command",
        "run emulated Kubernetes API + Expo simulator + operator locally, no cluster needed",
    ),
    "expo-simulator": ("publishing_operator.simulator.command", "serve the Expo API simulator over HTTP"),
}


class Subcommand(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def _load(module: str) -> Subcommand:
    try:
        return cast(Subcommand, importlib.import_module(module))
    except ImportError as exc:  # e.g. the sandbox extras are not installed
        raise SystemExit(
            f"publishing-operator: this command needs an optional dependency ({exc.name}); "
            "install with: pip install 'publishing-operator[sandbox]'"
        ) from None


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="publishing-operator",
        description="Drive PublishingBuild resources through Expo EAS Build and EAS Submit.",
    )
    parser.add_argument("--version", action="version", version=f"publishing-operator {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    # Only the chosen subcommand's module is imported (help for all lists them without loading).
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module, summary) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary)
        if name == chosen:
            _load(module).configure(sub)
            sub.set_defaults(handler_module=module)
    subparsers.add_parser("version", help="print the version and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    if args.command == "version":
        print(f"publishing-operator {__version__}")
        return 0
    return _load(args.handler_module).main(args)
