"""A real Kubernetes control plane for tests (envtest-style): etcd and kube-apiserver built from Go
modules (tests/tools/controlplane, tests/tools/etcd), started on loopback ports with TLS, RBAC and
ServiceAccount token signing, and stopped with their data removed."""

from publishing_testkit.controlplane.binaries import (
    BIN_DIR_ENV,
    Binaries,
    BinariesUnavailable,
    find_binaries,
)
from publishing_testkit.controlplane.plane import ControlPlane, ControlPlaneError

__all__ = [
    "BIN_DIR_ENV",
    "Binaries",
    "BinariesUnavailable",
    "ControlPlane",
    "ControlPlaneError",
    "find_binaries",
]
