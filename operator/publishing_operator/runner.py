"""`publishing-operator run`: the production entry point (kubeconfig or in-cluster config)."""

from __future__ import annotations

import argparse
import os
import sys

from publishing_operator.settings import SettingsError, add_flags, flags_from_args, load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_flags(parser)


def main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ, flags_from_args(args))
    except SettingsError as exc:
        print(f"publishing-operator: {exc}", file=sys.stderr)
        return 2
    print(
        "publishing-operator: the reconcile loop is not wired yet; "
        f"settings are valid (Expo API {settings.expo_api_url}, start rate {settings.start_rate}). "
        "It needs a cluster: use `publishing-operator sandbox` for a local one.",
        file=sys.stderr,
    )
    return 1
