"""`publishing-operator run | version`, plus subcommands other distributions add.

Each subcommand lives in its own module exposing `configure(parser)` and `main(args) -> int`. The
operator itself has `run`; the test tooling (`publishing-operator-testkit`: `sandbox`,
`expo-simulator`) registers more under the entry-point group `publishing_operator.commands`, as
`name = "module"`. Modules are imported lazily so `version` and `--help` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Protocol, cast

from publishing_operator import __version__

ENTRY_POINT_GROUP = "publishing_operator.commands"
BUILTIN: dict[str, str] = {"run": "publishing_operator.runner"}


class Subcommand(Protocol):
    """A subcommand module: its docstring's first line is its help."""

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def main(self, args: argparse.Namespace) -> int: ...


def subcommands() -> dict[str, str]:
    """Name → module, the operator's own first (an installed plugin cannot replace `run`)."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN}


SUMMARIES: dict[str, str] = {
    "run": "run the operator against a cluster (kubeconfig or in-cluster)",
    "sandbox": "run emulated Kubernetes API + Expo simulator + operator locally, no cluster needed",
    "expo-simulator": "serve the Expo API simulator over HTTP",
}


def _load(module: str) -> Subcommand:
    try:
        return cast(Subcommand, importlib.import_module(module))
    except ImportError as exc:  # an entry point of a half-installed plugin
        raise SystemExit(
            f"publishing-operator: this command cannot load ({exc.name} is missing); "
            "reinstall the distribution that provides it"
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
    for name, module in sorted(subcommands().items(), key=lambda item: item[0] != "run"):
        summary = SUMMARIES.get(name, f"provided by {module.split('.')[0]}")
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
