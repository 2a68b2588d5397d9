"""Nothing in the project reads outside the repository (issue: the repository must stand alone)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fixtures.confinement import REPO_ROOT, Confinement


def test_confinement_flags_a_sibling_of_the_checkout(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    confinement = Confinement(root)
    confinement.check(root / "sub" / "file.txt")
    confinement.check("/etc/hostname")
    confinement.check(3)  # a file descriptor
    assert confinement.escapes == []
    confinement.check(tmp_path / "shared" / "expo" / "graphql.schema.json")
    confinement.check(str(root) + "-other/file")  # a sibling whose name starts like the checkout
    assert confinement.escapes == [
        str(tmp_path / "shared" / "expo" / "graphql.schema.json"),
        str(root) + "-other/file",
    ]


def test_no_tracked_file_points_beside_the_checkout() -> None:
    """A path like ../shared in code, build files or docs works only where that folder exists."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in files:
        path = REPO_ROOT / name
        if path.suffix in {".json", ".gz", ".png", ".sum"} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for needle in ("../shared", '"shared" /', 'parent / "shared"'):
            if needle in text and name != "tests/unit/test_self_contained.py":
                offenders.append(f"{name}: {needle}")
    assert offenders == []
