"""The image's locks match pyproject.toml: the runtime lock pins exactly the closure of the
project's runtime dependencies (no dev or sandbox extra), each within its declared range and with
hashes; the build lock pins the build system's requirements. `make lock` refreshes both."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.image.lock import BUILD_LOCK, PROJECT, REPO_ROOT, RUNTIME_LOCK, read_lock

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
RUNTIME = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
BUILD = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]


def test_runtime_lock_pins_every_runtime_dependency_in_range() -> None:
    pins = read_lock(RUNTIME_LOCK)
    for requirement in RUNTIME:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pin.version, prereleases=True), (requirement, pin.version)


def test_runtime_lock_was_made_from_exactly_these_dependencies() -> None:
    """uv marks the project's own requirements `via publishing-operator`: that set is pyproject's
    runtime list, so an added, removed or extra-only dependency shows up here."""
    pins = read_lock(RUNTIME_LOCK)
    direct = {name for name, pin in pins.items() if PROJECT in pin.via}
    assert direct == {canonicalize_name(r.name) for r in RUNTIME}, "run `make lock`"


def test_runtime_lock_is_a_closure_with_hashes() -> None:
    pins = read_lock(RUNTIME_LOCK)
    for name, pin in pins.items():
        assert pin.hashes, f"{name} has no hash"
        assert pin.via, f"{name} says nothing of why it is there"
        assert pin.via <= set(pins) | {PROJECT}, f"{name} is required by something unpinned: {pin.via}"
    dev_only = {"pytest", "mypy", "ruff", "kmock", "cel-python", "graphql-core", "jsonschema", "kubernetes"}
    assert not dev_only & set(pins), "a development or sandbox package is in the runtime lock"


def test_build_lock_pins_the_build_system() -> None:
    pins = read_lock(BUILD_LOCK)
    for requirement in BUILD:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is not in requirements-build.lock: run `make lock`"
        assert requirement.specifier.contains(pin.version, prereleases=True), (requirement, pin.version)
    assert all(pin.hashes for pin in pins.values())
