"""The operator's Python environment as the image ships it, for the benchmarks.

The development virtualenv holds the test tooling too, and kopf imports the official `kubernetes`
client whenever it is installed (`kopf._cogs.helpers.thirdparty`, for handlers that return its
models; ours do not). Run from the development virtualenv, the operator carried ~11 MB of RSS and
0.2 s of start-up that the image never has. So the benchmarks run it from a virtualenv holding
exactly the runtime lock, installed as the Dockerfile installs it (`requirements.lock`,
`--require-hashes --no-deps`, no pip inside), with this checkout's `operator/` on its path (a .pth
file: the source under measurement, no wheel to rebuild after each change).

Built once per lock and interpreter into `$XDG_CACHE_HOME/publishing-operator/bench-runtime/<hash>`
(default `~/.cache`); the first build needs PyPI or pip's cache.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = REPO_ROOT / "requirements.lock"
SOURCE_ROOT = REPO_ROOT / "operator"
PIP_TIMEOUT = 900
ENVIRONMENTS = ("shipped", "dev")


class ShippedEnvError(RuntimeError):
    pass


def _base_python() -> str:
    return str(getattr(sys, "_base_executable", sys.executable))


def _key() -> str:
    digest = hashlib.sha256(RUNTIME_LOCK.read_bytes())
    digest.update(_base_python().encode() + b"\0" + sys.version.encode())
    return digest.hexdigest()[:16]


def shipped_python() -> Path:
    """The interpreter of the shipped environment (built on first use), with `operator/` on its path."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache / "publishing-operator" / "bench-runtime" / _key()
    python = root / "bin" / "python"
    if not (root / ".complete").is_file():
        tmp = root.with_name(root.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        venv.EnvBuilder(with_pip=False).create(tmp)
        command = [
            _base_python(),
            "-m",
            "pip",
            "--python",
            str(tmp / "bin" / "python"),
            "--disable-pip-version-check",
            "install",
            "--require-hashes",
            "--no-deps",
            "-r",
            str(RUNTIME_LOCK),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ShippedEnvError(
                "cannot build the operator's shipped environment (the runtime lock from PyPI); "
                "run with --operator-env dev to measure in the development virtualenv instead:\n"
                + (done.stdout + done.stderr)[-2000:]
            )
        (tmp / ".complete").write_text(" ".join(command) + "\n")
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    # The source under measurement, whichever checkout this is (rewritten on every use).
    (site,) = (root / "lib").glob("python*/site-packages")
    (site / "publishing_operator_source.pth").write_text(f"{SOURCE_ROOT}\n")
    return python


def add_flag(parser: argparse.ArgumentParser) -> None:
    """`--operator-env`, for every benchmark command that runs the operator (see `operator_python`)."""
    parser.add_argument(
        "--operator-env",
        choices=ENVIRONMENTS,
        default="shipped",
        help="the operator's Python environment: the image's packages (default) or this virtualenv",
    )


def operator_python(environment: str) -> Path:
    """`shipped` (the image's packages) or `dev` (this interpreter, with the test tooling installed)."""
    if environment == "dev":
        return Path(sys.executable)
    if environment == "shipped":
        return shipped_python()
    raise ValueError(f"unknown operator environment {environment!r} (shipped or dev)")


def clean_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without what would point the shipped interpreter back at the development virtualenv."""
    return {k: v for k, v in env.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
