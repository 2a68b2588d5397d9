"""Shared pytest wiring. Fixture modules live in tests/fixtures/, one concept each."""

import importlib.util

pytest_plugins = [
    name
    for name in (
        "tests.fixtures.confinement",
        "tests.fixtures.kube",
        "tests.fixtures.expo",
        "tests.fixtures.operator",
        "tests.fixtures.prometheus",
    )
    if importlib.util.find_spec(name) is not None
]
