"""Differential tests: each request goes to the emulator and to a real kube-apiserver, and the
answers must agree. They need the real control plane, so they run only with
PUBLISHING_TEST_API=real (`make test-real`); on the emulator pass they are skipped, and say so."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from publishing_testkit.kube_emulator import emulator_in_thread
from tests.differential.pair import Pair
from tests.fixtures.kube import Kube

if TYPE_CHECKING:  # the testkit is imported only where the real API server is used
    from publishing_testkit.controlplane import ControlPlane


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(
                pytest.mark.real_only("a differential test compares the emulator with kube-apiserver")
            )


@contextlib.contextmanager
def make_pair(plane: ControlPlane, name: str, folder: Path) -> Iterator[Pair]:
    """The emulator and the real server, each with a namespace of the same name and crds/ applied;
    kubectl is the real server's (same release) for both."""
    from tests.fixtures.real_api import delete_custom_resources, namespace_for_test

    namespace = namespace_for_test(f"d-{name}")
    plane.create_namespace(namespace)
    kubectl = str(plane.binaries.kubectl)
    real = Kube(
        kubeconfig=plane.write_kubeconfig(folder / "real.kubeconfig", namespace=namespace),
        cache_dir=folder / "real-cache",
        plane=plane,
        namespace=namespace,
        kubectl_path=kubectl,
    )
    try:
        with emulator_in_thread(bookmark_interval=1.0, tls=True) as thread:
            emulator = Kube(
                kubeconfig=thread.handle.write_kubeconfig(
                    folder / "emulator.kubeconfig", namespace=namespace
                ),
                cache_dir=folder / "emulator-cache",
                thread=thread,
                namespace=namespace,
                kubectl_path=kubectl,
            )
            emulator.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
            emulator.apply_crds()
            yield Pair(emulator=emulator, real=real)
    finally:
        delete_custom_resources(plane, namespace)


@pytest.fixture
def pair(
    control_plane: ControlPlane | None, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Pair]:
    assert control_plane is not None
    with make_pair(control_plane, request.node.name, tmp_path) as made:
        yield made


@pytest.fixture(scope="module")
def module_pair(
    control_plane: ControlPlane | None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    assert control_plane is not None
    name = request.module.__name__.rsplit(".", 1)[-1]
    with make_pair(control_plane, name, tmp_path_factory.mktemp(name)) as made:
        yield made
