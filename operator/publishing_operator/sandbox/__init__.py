"""The local sandbox: an emulated Kubernetes API server (on kmock) and the `sandbox` command."""

from publishing_operator.sandbox.server import (
    ApplyError,
    EmulatorHandle,
    EmulatorThread,
    emulator_in_thread,
    load_manifests,
    serve_emulator,
)

__all__ = [
    "ApplyError",
    "EmulatorHandle",
    "EmulatorThread",
    "emulator_in_thread",
    "load_manifests",
    "serve_emulator",
]
