"""The Docker build context as Docker sends it (.dockerignore applied by docker-py's
implementation of Docker's rules), and the Dockerfile's instructions, for the checks a Docker
engine would otherwise make."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import exclude_paths

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"


def context_files() -> set[str]:
    """Paths (relative, files only) that `docker build .` would send."""
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return {path for path in exclude_paths(str(REPO_ROOT), patterns) if (REPO_ROOT / path).is_file()}


def copy_context(target: Path) -> Path:
    for relative in context_files():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / relative, destination)
    return target


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    arguments: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions (continuations joined, comments dropped), with their stage."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out: list[Instruction] = []
    stage = -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, arguments.strip()))
    return out
