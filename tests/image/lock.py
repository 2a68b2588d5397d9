"""Reading the image's dependency locks (requirements.lock, requirements-build.lock, made by
`make lock` with uv): pinned names, versions, hashes and uv's `# via` annotations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = REPO_ROOT / "requirements.lock"
BUILD_LOCK = REPO_ROOT / "requirements-build.lock"
PROJECT = "publishing-operator"
# `name==version [; marker] \` (the hashes follow on their own lines)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


@dataclass
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def read_lock(path: Path) -> dict[str, Pin]:
    """Canonical name -> pin."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in path.read_text().splitlines():
        requirement = PIN.match(line)
        if requirement:
            name = canonicalize_name(requirement.group(1))
            current = pins[name] = Pin(name, requirement.group(2), requirement.group(3))
            in_via = False
            continue
        if current is None:
            continue
        digest = re.match(r"^\s+--hash=(sha256:[0-9a-f]{64})", line)
        if digest:
            current.hashes.append(digest.group(1))
        elif re.match(r"^\s+# via\s*$", line):
            in_via = True
        elif via := re.match(r"^\s+# via (.+)$", line):
            current.via.add(_via_name(via.group(1)))
        elif in_via and (item := re.match(r"^\s+#\s+(.+)$", line)):
            current.via.add(_via_name(item.group(1)))
    return pins


def _via_name(text: str) -> str:
    """`kopf` -> kopf; `publishing-operator (pyproject.toml)` -> publishing-operator; `-r -` stays."""
    return canonicalize_name(text.split(" (")[0].strip()) if not text.startswith("-") else text.strip()
