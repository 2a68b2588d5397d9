"""An emulated Kubernetes API server (on kmock): the API semantics the operator, kopf and kubectl rely on."""

from publishing_testkit.kube_emulator.faults import ApiFault, RequestRecord
from publishing_testkit.kube_emulator.server import (
    ApplyError,
    EmulatorHandle,
    EmulatorThread,
    emulator_in_thread,
    load_manifests,
    serve_emulator,
)

__all__ = [
    "ApiFault",
    "ApplyError",
    "EmulatorHandle",
    "EmulatorThread",
    "RequestRecord",
    "emulator_in_thread",
    "load_manifests",
    "serve_emulator",
]
