"""Value sets the chart tests render: the defaults, every toggle on, and namespaced mode."""

from __future__ import annotations

from typing import Any

# Every optional object on (the ServiceMonitor variant; the PodMonitor excludes it).
ALL_ON: dict[str, Any] = {
    "crds": {"enabled": True, "keep": True},
    "rbac": {"create": True, "aggregateToDefaultRoles": True},
    "serviceAccount": {"create": True, "annotations": {"example.com/role": "publishing"}},
    "metrics": {
        "service": {"enabled": True, "annotations": {"prometheus.io/scrape": "true"}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}, "honorLabels": True},
    },
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    "grafanaDashboard": {"enabled": True, "namespace": "monitoring", "folder": "Publishing"},
    "podDisruptionBudget": {"enabled": True},
    "image": {"digest": "sha256:" + "0" * 64},
    "imagePullSecrets": [{"name": "registry"}],
    "podAnnotations": {"example.com/team": "mobile"},
    "podLabels": {"example.com/team": "mobile"},
    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"}],
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {}},
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "terminationGracePeriodSeconds": 60,
}

ALL_ON_PODMONITOR: dict[str, Any] = {
    **ALL_ON,
    "metrics": {
        "service": {"enabled": False},
        "serviceMonitor": {"enabled": False},
        "podMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    },
}

NAMESPACED: dict[str, Any] = {"watchNamespaces": ["mobile", "games"]}

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "all-on": ALL_ON,
    "all-on-podmonitor": ALL_ON_PODMONITOR,
    "namespaced": NAMESPACED,
    "namespaced-all-on": {**ALL_ON, **NAMESPACED},
}
