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
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    VariableOption,
    VariableRefresh,
)

from churnwatch.dashboards.panels import (
    ALL_SEGMENTS,
    DASHBOARDS,
    REASON_VALUES,
    SEGMENT_VALUES_SQL,
    TIERS,
    DashboardSpec,
    PromPanel,
    SqlPanel,
)
from churnwatch.features.segments import SEGMENTS

#: data source uids; ``deploy/grafana/provisioning/datasources`` creates them
POSTGRES = DataSourceRef(type_val="grafana-postgresql-datasource", uid="churnwatch-postgres")
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="churnwatch-prometheus")
#: the data source variables every panel reads through, chosen on import into any
#: Grafana; they default to the provisioned sources
SOURCE_VARIABLES = {"postgres": POSTGRES, "prometheus": PROMETHEUS}
_SOURCE_OF = {
    ref.type_val: DataSourceRef(type_val=ref.type_val, uid=f"${{{name}}}")
    for name, ref in SOURCE_VARIABLES.items()
}

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
            "datasource": _SOURCE_OF[POSTGRES.type_val].to_json(),
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


def _source_variable(name: str, ref: DataSourceRef) -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable(name)
        .type(ref.type_val or "")
        .label(f"{name} data source")
        .current(VariableOption(selected=True, text=ref.uid or "", value=ref.uid or ""))
    )


def _segment_variable(name: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(name.capitalize())
        .datasource(_SOURCE_OF[POSTGRES.type_val])
        .query(SEGMENT_VALUES_SQL[name])
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .multi(True)
        .include_all(True)
        .all_value(ALL_SEGMENTS)
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
        for name, properties in spec.overrides:
            panel = panel.override_by_name(
                name, [DynamicConfigValue(id_val=k, value=v) for k, v in properties]
            )
        source = _SOURCE_OF[POSTGRES.type_val]
        return panel.datasource(source).with_target(SqlQuery(spec.sql, spec.result_format))
    source = _SOURCE_OF[PROMETHEUS.type_val]
    panel = panel.datasource(source)
    for ref, (expr, legend) in zip("ABCDEFGH", spec.queries, strict=False):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
        panel = panel.with_target(query.datasource(source))
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
    for name, ref in SOURCE_VARIABLES.items():
        board = board.with_variable(_source_variable(name, ref))
    if spec.variables:
        board = board.with_variable(_variable("tier", "Value tier", TIERS))
        board = board.with_variable(_variable("reason", "Churn reason", REASON_VALUES))
        sql = " ".join(p.sql for p in spec.panels if isinstance(p, SqlPanel))
        for name in SEGMENTS:  # the segment variables of the dashboards that filter by them
            if f"${name}" in sql:
                board = board.with_variable(_segment_variable(name))
    for panel_id, panel in enumerate(spec.panels, start=1):
        board = board.with_panel(_panel(panel, panel_id))
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model, by uid."""
    return {spec.uid: build_dashboard(spec) for spec in DASHBOARDS}
