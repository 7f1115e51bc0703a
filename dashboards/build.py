"""The dashboards of ``panels.py`` built with Grafana's foundation SDK.

The SDK types every field of the dashboard model; its encoder writes the JSON
Grafana imports. The SDK has no PostgreSQL query type, so :class:`SqlQuery`
supplies one (the fields Grafana's SQL data source reads).
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    dashboard,
    piechart,
    prometheus,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption

from churnwatch.dashboards.panels import (
    DASHBOARDS,
    REASON_VALUES,
    TIERS,
    DashboardSpec,
    PromPanel,
    SqlPanel,
)

#: data source uids; ``deploy/grafana/provisioning/datasources`` creates them
POSTGRES = DataSourceRef(type_val="grafana-postgresql-datasource", uid="churnwatch-postgres")
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="churnwatch-prometheus")

_PANEL_TYPES: dict[str, Any] = {
    "table": table.Panel,
    "timeseries": timeseries.Panel,
    "barchart": barchart.Panel,
    "piechart": piechart.Panel,
    "bargauge": bargauge.Panel,
}


class _SqlDataquery(cogvariants.Dataquery):
    """A raw-SQL target of Grafana's PostgreSQL data source."""

    def __init__(self, sql: str, result_format: str) -> None:
        self.sql, self.result_format = sql, result_format

    def to_json(self) -> dict[str, object]:
        return {
            "refId": "A",
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "rawQuery": True,
            "rawSql": self.sql,
            "format": self.result_format,
        }


class SqlQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for :class:`_SqlDataquery`, so SQL targets go where the SDK's do."""

    def __init__(self, sql: str, result_format: str) -> None:
        self._query = _SqlDataquery(sql, result_format)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _variable(name: str, label: str, values: tuple[str, ...]) -> dashboard.CustomVariable:
    return (
        dashboard.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .multi(True)
        .include_all(True)
        .allow_custom_value(False)
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def _panel(spec: SqlPanel | PromPanel, panel_id: int) -> Any:
    panel = (
        _PANEL_TYPES[spec.kind]()
        .id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .span(spec.width)
        .height(spec.height)
    )
    if spec.unit:
        panel = panel.unit(spec.unit)
    if isinstance(spec, SqlPanel):
        return panel.datasource(POSTGRES).with_target(SqlQuery(spec.sql, spec.result_format))
    panel = panel.datasource(PROMETHEUS)
    for ref, (expr, legend) in zip("ABCDEFGH", spec.queries, strict=False):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
        panel = panel.with_target(query.datasource(PROMETHEUS))
    return panel


def build_dashboard(spec: DashboardSpec) -> dict[str, Any]:
    """The JSON model of one dashboard."""
    board = (
        dashboard.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(["churnwatch"])
        .time("now-90d", "now")
        .refresh("30s")
        .timezone("browser")
        .editable()
    )
    if spec.variables:
        board = board.with_variable(_variable("tier", "Value tier", TIERS))
        board = board.with_variable(_variable("reason", "Churn reason", REASON_VALUES))
    for panel_id, panel in enumerate(spec.panels, start=1):
        board = board.with_panel(_panel(panel, panel_id))
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model, by uid."""
    return {spec.uid: build_dashboard(spec) for spec in DASHBOARDS}
