"""The throwaway directory of one control plane (etcd data, certificates, logs, kubeconfig).

Its name carries the launcher's pid. A launcher that died without cleaning up (SIGKILL) leaves its
directory behind; the next launcher removes every such directory whose pid is no longer running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "publishing-controlplane-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the directories of launchers that are gone; returns what was removed."""
    base = root or Path(tempfile.gettempdir())
    removed: list[Path] = []
    for candidate in base.glob(f"{PREFIX}*"):
        pid_text = candidate.name[len(PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


def make_workdir(root: Path | None = None) -> Path:
    sweep_stale(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
    folder.chmod(0o700)  # holds private keys and the admin token
    return folder


def remove_workdir(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(folder)
