"""Every operator setting is a chart value: a field added to settings.Settings fails here until the
chart exposes it (values.yaml with a comment, values.schema.json, the rendered PUBLISHING_* variable).

`namespaces` is the one exception in name: it is the chart's top-level `watchNamespaces`, because the
RBAC depends on it too.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import yaml

from publishing_operator.durations import format_duration
from publishing_operator.settings import Settings, env_name, load_settings
from tests.chart.tools import CHART, one, render

RENAMED = {"namespaces": "watchNamespaces"}
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def chart_key(field: str) -> str:
    head, *rest = field.split("_")
    return RENAMED.get(field, head + "".join(part.title() for part in rest))


def container_env(values: dict[str, Any] | None = None) -> dict[str, str]:
    container = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item["value"] for item in container["env"] if "value" in item}


def operator_default(field: str) -> Any:
    default = Settings.model_fields[field].get_default(call_default_factory=True)
    if isinstance(default, timedelta):
        return format_duration(default)
    if isinstance(default, tuple):
        return list(default)
    return default if isinstance(default, int | bool) else str(default)


SETTINGS = sorted(set(Settings.model_fields) - set(RENAMED))


@pytest.mark.parametrize("field", SETTINGS)
def test_setting_is_a_value_with_the_operators_default(field: str) -> None:
    key = chart_key(field)
    assert key in VALUES["settings"], f"settings.{key} (for {env_name(field)}) is missing from values.yaml"
    assert key in SCHEMA["properties"]["settings"]["properties"], f"settings.{key} is missing from the schema"
    assert VALUES["settings"][key] == operator_default(field), f"settings.{key}: not the operator's default"


def test_values_hold_no_setting_the_operator_lacks() -> None:
    assert sorted(VALUES["settings"]) == sorted(chart_key(field) for field in SETTINGS)


def test_rendered_environment_is_every_setting_and_loads() -> None:
    env = container_env()
    expected = {env_name(field) for field in Settings.model_fields}
    assert {name for name in env if name.startswith("PUBLISHING_")} == expected
    # The operator reads the chart's defaults back as its own defaults.
    assert load_settings(env) == Settings()


def test_every_setting_value_reaches_the_operator() -> None:
    """A non-default value for each setting arrives as the operator reads it."""
    changed = {
        "expoApiUrl": "http://localhost:8787/graphql",  # a simulator sidecar: expoSimulator needs loopback
        "expoSimulator": True,
        "startRate": "10/120s",
        "maxInFlight": 7,
        "pollBuild": "45s",
        "pollSubmission": "20s",
        "maxConcurrentSteps": 8,
        "historySucceeded": 5,
        "historyFailed": 6,
        "metricsPort": 9191,
        "healthPort": 8181,
        "circuitThreshold": 9,
        "circuitOpenFor": "1m",
        "shutdownGrace": "40s",
        "logFormat": "plain",
        "expoTimeout": "45s",
        "clockSkew": "5s",
        "startConfirmTimeout": "30m",
        "leaderElection": False,
        "leaseNamespace": "ops",
        "leaseName": "publishing-operator-canary",
        "archiveAllowedHosts": ["artifacts.internal:8443", "10.8.0.0/16"],
        "archiveRequireHttps": False,
        "archiveRequireSha256": True,
    }
    missing = sorted(set(VALUES["settings"]) - set(changed))
    assert missing == [], f"add a non-default value for {missing} here"
    env = container_env({"settings": changed, "watchNamespaces": ["mobile", "games"]})
    loaded = load_settings(env)
    for key, value in changed.items():
        field = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        got = getattr(loaded, field)
        shown = format_duration(got) if isinstance(got, timedelta) else got
        if isinstance(value, list):
            assert list(shown) == value, (key, shown)
        else:
            assert str(shown) == str(value), (key, shown)
    assert loaded.namespaces == ("mobile", "games")


def test_probe_ports_follow_the_settings() -> None:
    spec = one(render({"settings": {"healthPort": 8181, "metricsPort": 9191}}), "Deployment")["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9191, "health": 8181}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
