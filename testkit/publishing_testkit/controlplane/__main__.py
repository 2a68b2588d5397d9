"""`python -m publishing_testkit.controlplane`: a real control plane in the foreground until Ctrl-C
(what `make cluster` runs), or `--build-only` to build the binaries and print where they are."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from publishing_testkit.controlplane.binaries import BinariesUnavailable, find_binaries
from publishing_testkit.controlplane.plane import ControlPlane, ControlPlaneError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m publishing_testkit.controlplane",
        description="Run etcd + kube-apiserver (no controllers) until Ctrl-C; write an admin kubeconfig.",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, default=Path(".cluster/kubeconfig"), help="where to write it"
    )
    parser.add_argument("--namespace", default="default", help="the kubeconfig context's namespace")
    parser.add_argument("--bin-dir", type=Path, help="a directory with kube-apiserver, etcd and kubectl")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness")
    parser.add_argument("--build-only", action="store_true", help="build the binaries, print them, exit")
    return parser


def _usage(plane: ControlPlane, kubeconfig: Path, started: float) -> str:
    kubectl = plane.binaries.kubectl
    version = plane.client.request("GET", "/version").body.get("gitVersion")
    took = time.monotonic() - started
    return f"""
kube-apiserver {version} + etcd (no controllers) serving at {plane.url}, ready in {took:.1f}s.

  export KUBECONFIG={kubeconfig}
  kubectl --kubeconfig {kubeconfig} get namespaces
  kubectl --kubeconfig {kubeconfig} apply -f crds/ -f examples/secrets.yaml
  kubectl --kubeconfig {kubeconfig} --context admin-cert auth whoami     # the admin by client certificate

kubectl of the same release: {kubectl}
The operator against it (Expo's simulator in another terminal: publishing-operator expo-simulator):
  publishing-operator run --kubeconfig {kubeconfig}

Nothing runs beside the API server: no garbage collection, namespaces never finish terminating,
no default ServiceAccounts (create them; `kubectl create token NAME` works).
Ctrl-C stops etcd and kube-apiserver and removes their data.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        binaries = find_binaries(args.bin_dir)
    except BinariesUnavailable as error:
        print(f"controlplane: {error}", file=sys.stderr)
        return 2
    if args.build_only:
        for path in binaries.all():
            print(path)
        return 0

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds through `with`, which stops both and removes the data

    # SIGINT too: a process started in the background by a non-interactive shell inherits SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler of its own.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    started = time.monotonic()
    try:
        with ControlPlane(binaries, start_timeout=args.timeout) as plane:
            kubeconfig = plane.write_kubeconfig(args.kubeconfig, namespace=args.namespace)
            print(_usage(plane, kubeconfig, started), flush=True)
            try:
                while plane.running:
                    threading.Event().wait(1.0)  # wake up to notice a crashed child
            finally:
                kubeconfig.unlink(missing_ok=True)  # it names a server that is about to go away
            print("controlplane: a child process exited; stopping", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\ncontrolplane: stopped; temporary data removed", file=sys.stderr)
        return 0
    except ControlPlaneError as error:
        print(f"controlplane: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
