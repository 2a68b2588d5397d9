"""The image's Python environment, built the way the Dockerfile builds it but without Docker: a fresh
virtual environment with no pip, the runtime lock installed into it (`--require-hashes --no-deps`),
the wheel built from the Docker build context (`.dockerignore` applied) with the locked build tools,
installed without dependencies. From it the operator starts and drives the examples to Succeeded
against the emulated API and the Expo simulator: the lock holds everything the operator imports,
and nothing of the test tooling (testkit/) is needed or present.

Needs PyPI (pip downloads the locked files; its cache makes later runs quick).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from publishing_operator import __version__
from tests.fixtures.operator import FAST_OPERATOR, OperatorProcess, Stack, example, phase
from tests.image.context import copy_context
from tests.image.lock import BUILD_LOCK, RUNTIME_LOCK, read_lock

pytestmark = pytest.mark.timeout(900)
PIP_TIMEOUT = 600


@dataclass(frozen=True)
class ImageEnv:
    root: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def operator(self) -> Path:
        return self.root / "bin" / "publishing-operator"


def pip(*args: str, python: Path | None = None) -> str:
    """The base interpreter's pip (as the Dockerfile uses the base image's pip), optionally
    installing into another environment with --python."""
    target = ["--python", str(python)] if python else []
    result = subprocess.run(
        [sys._base_executable, "-m", "pip", *target, "--disable-pip-version-check", *args],  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> ImageEnv:
    tmp = tmp_path_factory.mktemp("image")
    # 1. the runtime environment, without pip, from the lock
    runtime = tmp / "opt-operator"
    venv.EnvBuilder(with_pip=False).create(runtime)
    pip("install", "--require-hashes", "--no-deps", "-r", str(RUNTIME_LOCK), python=runtime / "bin/python")
    # 2. the wheel, from the build context, with the locked build tools (their own environment,
    #    as they stay in the Dockerfile's build stage)
    build = tmp / "build-tools"
    venv.EnvBuilder(with_pip=False).create(build)
    pip("install", "--require-hashes", "--no-deps", "-r", str(BUILD_LOCK), python=build / "bin" / "python")
    context = copy_context(tmp / "context")
    wheels = tmp / "wheels"
    subprocess.run(
        [
            sys._base_executable,
            "-m",
            "pip",
            "--python",
            str(build / "bin" / "python"),
            "wheel",  # type: ignore[attr-defined]
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=True,
    )
    (wheel,) = wheels.glob("*.whl")
    # 3. the operator, without dependencies
    pip("install", "--no-deps", str(wheel), python=runtime / "bin" / "python")
    return ImageEnv(runtime, wheel)


def run_in(env: ImageEnv, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, check=False, env=clean, cwd=env.root
    )


def test_wheel_holds_the_operator_and_nothing_else(image_env: ImageEnv) -> None:
    names = zipfile.ZipFile(image_env.wheel).namelist()
    assert "publishing_operator/runner.py" in names and "publishing_operator/handlers.py" in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"publishing_operator", f"publishing_operator-{__version__}.dist-info"}


def test_environment_is_exactly_the_lock_plus_the_operator(image_env: ImageEnv) -> None:
    listed = pip("list", "--format=freeze", "--exclude-editable", python=image_env.python)
    installed = {canonicalize_name(line.split("==")[0]) for line in listed.splitlines() if "==" in line}
    expected = set(read_lock(RUNTIME_LOCK)) | {"publishing-operator"}
    # cffi/pycparser carry "not PyPy" markers: installed here (CPython), as in the image.
    assert installed == expected
    pip("check", python=image_env.python)
    assert not (image_env.root / "bin" / "pip").exists(), "the image's environment has no pip"


def test_every_operator_module_imports_from_the_lock_alone(image_env: ImageEnv) -> None:
    script = (
        "import importlib, pkgutil, publishing_operator as p\n"
        "names = [m.name for m in pkgutil.walk_packages(p.__path__, 'publishing_operator.')]\n"
        "[importlib.import_module(n) for n in names if not n.endswith('__main__')]\n"
        "print(len(names))\n"
    )
    result = run_in(image_env, str(image_env.python), "-I", "-c", script)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 10


def test_version_and_only_the_operators_commands(image_env: ImageEnv) -> None:
    result = run_in(image_env, str(image_env.operator), "version")
    assert result.returncode == 0 and result.stdout.strip() == f"publishing-operator {__version__}"
    usage = run_in(image_env, str(image_env.operator), "--help")
    assert usage.returncode == 0 and "run" in usage.stdout
    assert "sandbox" not in usage.stdout and "expo-simulator" not in usage.stdout
    testkit = run_in(image_env, str(image_env.python), "-I", "-c", "import publishing_testkit")
    assert testkit.returncode != 0


async def test_operator_from_the_image_environment_drives_builds_to_succeeded(
    image_env: ImageEnv, stack: Stack
) -> None:
    stack.apply_example_secrets()
    ios, android = example("ios-testflight"), example("android-play-internal")
    stack.apply(ios, android)
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}},
        **FAST_OPERATOR,
        "PUBLISHING_EXPO_API_URL": stack.expo.graphql_url,
    }
    command = [str(image_env.operator), "run", "--kubeconfig", str(stack.kube.kubeconfig)]
    stack.operators.append(OperatorProcess(command, env, stack.tmp / "operator.log").start())
    for doc in (ios, android):
        name = doc["metadata"]["name"]
        done = await stack.wait_phase(name, "Succeeded", "Failed", "Cancelled", timeout=120)
        assert phase(done) == "Succeeded", done["status"]
    assert len(stack.builds()) == 2
