"""Child processes that never outlive the Python process that started them.

Each child asks the kernel (prctl PR_SET_PDEATHSIG) for SIGKILL when its parent dies, so a
SIGKILLed pytest or a crashed launcher leaves no etcd or kube-apiserver behind. The kernel sends
it when the *thread* that forked the child ends: start children from a thread that lives as long
as they should (the main thread, a session fixture).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # Own process group: a Ctrl-C in the terminal reaches only the launcher, which then stops the
    # children in order (kube-apiserver before etcd) instead of both dying at once.
    os.setpgrp()


@dataclass
class Child:
    """A running child process whose stdout and stderr go to `log_path`."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = field(default=False)

    @classmethod
    def start(cls, name: str, command: Sequence[str], log_path: Path, cwd: Path | None = None) -> Child:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                preexec_fn=_die_with_parent,  # the only way to set PDEATHSIG before exec
            )
        return cls(name, process, log_path)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; waits until the process is gone."""
        if self.stopped:
            return
        self.stopped = True
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(timeout=timeout)
