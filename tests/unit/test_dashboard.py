"""The Grafana dashboard: the committed JSON is the generator's output, works provisioned (a
datasource variable, no __inputs), filters every query by the namespace variable, and has the rows
an operator of a fleet expects."""

from __future__ import annotations

import re

from tests.fixtures.observability import DASHBOARD, dashboard, generator, panel_queries, panels, selectors

ROWS = [
    "Throughput",
    "Builds in flight",
    "Start limiter",
    "Durations",
    "Expo API",
    "Retries and circuit breaker",
    "Operator",
]


def test_the_committed_dashboard_is_the_generators_output() -> None:
    assert DASHBOARD.read_text() == generator().render(), (
        "deploy/grafana/publishing-operator.json is out of date: run python deploy/grafana/generate.py"
    )


def test_datasource_and_namespace_variables_and_no_inputs() -> None:
    board = dashboard()
    assert "__inputs" not in board and "__requires" not in board
    assert "DS_PROMETHEUS" not in DASHBOARD.read_text()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace"}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    namespace = variables["namespace"]
    assert namespace["type"] == "query"
    assert namespace["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert namespace["query"] == "label_values(publishing_operator_info, namespace)"


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_every_selector_is_limited_to_the_namespace_variable() -> None:
    for query in panel_queries():
        for selector in selectors(query.expr):
            assert 'namespace="$namespace"' in selector, (query.panel, selector)


def test_rows_in_order_and_unique_panel_ids() -> None:
    board = dashboard()
    assert [p["title"] for p in board["panels"] if p["type"] == "row"] == ROWS
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["uid"] == "publishing-operator"


def test_panels_lay_out_on_the_24_column_grid_without_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_only_grafana_macros_and_the_namespace_variable_are_used() -> None:
    for query in panel_queries():
        assert set(re.findall(r"\$\w+", query.expr)) <= {"$namespace", "$__rate_interval", "$__range"}, query


def test_the_panel_table_lists_every_query() -> None:
    table = generator().panel_table()
    for query in panel_queries():
        assert f"`{query.expr}`" in table
