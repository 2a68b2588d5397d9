"""Where the control plane's binaries come from: a directory named by the caller or the environment,
else built from this repository's Go modules (tests/tools/controlplane and tests/tools/etcd) by
tests/tools/gobuild, which caches them outside the repository (minutes cold, instant warm).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

# testkit/publishing_testkit/controlplane/binaries.py -> the repository root (an editable install or
# a checkout on PYTHONPATH; an installed wheel has no Go modules and needs BIN_DIR_ENV).
REPO_ROOT = Path(__file__).resolve().parents[3]
GOBUILD = REPO_ROOT / "tests" / "tools" / "gobuild"
MODULES = {"controlplane": ("kube-apiserver", "kubectl"), "etcd": ("etcd",)}
BIN_DIR_ENV = "PUBLISHING_CONTROLPLANE_BIN"  # one directory holding all three binaries


class BinariesUnavailable(RuntimeError):
    """The binaries are neither present nor buildable here (no Go toolchain, no repository)."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    kubectl: Path

    @classmethod
    def in_directory(cls, directory: str | Path) -> Binaries:
        folder = Path(directory)
        found = cls(folder / "kube-apiserver", folder / "etcd", folder / "kubectl")
        missing = [str(path) for path in found.all() if not os.access(path, os.X_OK)]
        if missing:
            raise BinariesUnavailable(f"not executable or missing: {', '.join(missing)}")
        return found

    def all(self) -> tuple[Path, Path, Path]:
        return (self.kube_apiserver, self.etcd, self.kubectl)


def gobuild(module: str, *, quiet: bool = False) -> Path:
    """Build (or find in the cache) one Go tool module of this repository; its bin directory."""
    if not GOBUILD.exists():
        raise BinariesUnavailable(f"{GOBUILD} not found: set {BIN_DIR_ENV} to a directory with the binaries")
    result = subprocess.run(
        [str(GOBUILD), str(REPO_ROOT / "tests" / "tools" / module)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,  # the build's progress goes to the terminal
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BinariesUnavailable(f"tests/tools/gobuild tests/tools/{module} exited {result.returncode}")
    return Path(result.stdout.strip())


def find_binaries(bin_dir: str | Path | None = None, *, build: bool = True) -> Binaries:
    """The binaries from `bin_dir`, else $PUBLISHING_CONTROLPLANE_BIN, else the Go build cache
    (building what is missing when `build` is true)."""
    directory = bin_dir or os.environ.get(BIN_DIR_ENV)
    if directory:
        return Binaries.in_directory(directory)
    if not build:
        raise BinariesUnavailable(f"no binaries given ({BIN_DIR_ENV}) and building is off")
    controlplane, etcd = gobuild("controlplane"), gobuild("etcd")
    return Binaries(controlplane / "kube-apiserver", etcd / "etcd", controlplane / "kubectl")
