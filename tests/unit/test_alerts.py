"""The alert rules: promtool accepts them, its unit tests pass, every alert has a case where it fires
and one where it stays silent, and every alert names a runbook section that exists in the README."""

from __future__ import annotations

import subprocess

import yaml

from tests.fixtures.observability import ALERT_TESTS, ALERTS, alert_rules, prometheus_tool, readme_anchors


def test_every_alert_has_summary_description_severity_and_a_readme_runbook() -> None:
    anchors = readme_anchors()
    rules = alert_rules()
    assert len(rules) >= 8
    for rule in rules:
        assert set(rule.annotations) == {"summary", "description", "runbook_url"}, rule.name
        assert rule.labels.get("severity") in {"warning", "critical"}, rule.name
        page, _, anchor = rule.annotations["runbook_url"].partition("#")
        assert page == "README.md" and anchor == rule.name.lower(), rule.name
        assert anchor in anchors, f"README.md has no heading for {rule.name}"


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [prometheus_tool("promtool"), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = subprocess.run(
        [prometheus_tool("promtool"), "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_case_and_a_silent_case() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test") or []:
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule.name for rule in alert_rules()}
    assert fires == names, f"alerts without a case where they fire: {names - fires}"
    assert silent == names, f"alerts without a case where they stay silent: {names - silent}"
