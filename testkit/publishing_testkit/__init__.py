"""Test tooling for publishing-operator, outside the operator's wheel and image.

- `kube_emulator`: an emulated Kubernetes API server (on kmock), for tests, benchmarks and the sandbox.
- `expo_simulator`: Expo's GraphQL API (the subset the operator uses), time-scaled, with fault knobs.
- `sandbox`: `publishing-operator sandbox`, the whole system on one machine with no cluster.
"""
