"""Grafana dashboards: every SQL panel on real PostgreSQL, the JSON, provisioning and push."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard
from typer.testing import CliRunner

from churnwatch import store
from churnwatch.cli import app
from churnwatch.dashboards import panels
from churnwatch.dashboards.build import POSTGRES, PROMETHEUS, build_all
from churnwatch.dashboards.macros import QueryContext, expand
from churnwatch.dashboards.push import export
from churnwatch.features.segments import SEGMENTS
from churnwatch.winback.report import fetch
from tests import winback_seed
from tests.builders import T0

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
FROM, TO = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
ALL = {
    "tier": list(panels.TIERS),
    "reason": list(panels.REASON_VALUES),
    **{d: [panels.ALL_SEGMENTS] for d in SEGMENTS},
}


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def epoch(day: int) -> float:
    return at(day).timestamp()


def _seed(conn: sa.Connection) -> None:
    """A hand-built store: 5 customers, 4 alerts (one before the range), tasks, events."""
    now = at(31)
    states = [
        ("c1", "high", "at_risk", 0.85),
        ("c2", "potential", "active", 0.30),
        ("c3", "general", "at_risk", 0.55),
        ("c4", "general", "lapsed", 0.10),
        ("c5", "general", "prospect", None),
    ]
    conn.execute(
        sa.insert(store.customer_state),
        [
            {
                "customer_id": cid,
                "partition": 0,
                "state": {},
                "updated_at": now,
                "value_tier": tier,
                "lifecycle_stage": stage,
                "score": score,
            }
            for cid, tier, stage, score in states
        ],
    )

    def alert(
        aid: str,
        cid: str,
        ts: datetime,
        score: float,
        tier: str,
        level: str,
        reason: str,
        status: str = "open",
        ack: datetime | None = None,
        *,
        case: str,
        ended: datetime | None = None,
        value: tuple[float, float] = (0.0, 0.0),
        segments: dict[str, str] | None = None,
        p_alive: float | None = None,
    ) -> dict[str, Any]:
        return {
            "alert_id": aid,
            "case_id": case,
            "ended_at": ended,
            "value_at_risk": value[0],
            "clv": value[1],
            "p_alive": p_alive,
            "segments": segments or {},
            "customer_id": cid,
            "ts": ts,
            "score": score,
            "risk_level": level,
            "value_tier": tier,
            "reason": reason,
            "reason_codes": [],
            "model_version": "rule",
            "status": status,
            "created_at": ts,
            "acknowledged_at": ack,
            "acknowledged_by": None if ack is None else "ann",
        }

    conn.execute(
        sa.insert(store.alerts),
        [
            alert(
                "a1",
                "c1",
                at(10, 12),
                0.85,
                "high",
                "critical",
                "service_quality",
                "won_back",
                case="a1",
                ended=at(12),
                value=(120.0, 141.18),
                segments={"region": "north", "industry": "retail"},
            ),
            # c3's case opened in February (a4) and was escalated by a2
            alert(
                "a2",
                "c3",
                at(10, 18),
                0.55,
                "general",
                "watch",
                "competitor",
                ack=at(11),
                case="a4",
                value=(30.25, 55.0),
                segments={"region": "south"},
            ),
            alert(
                "a3",
                "c2",
                at(20, 6),
                0.6249,
                "potential",
                "high",
                "service_quality",
                case="a3",
                value=(62.49, 100.0),
                segments={"region": "north", "channel": "online"},
                p_alive=0.4213,
            ),
            alert(
                "a4",
                "c3",
                datetime(2026, 2, 10, tzinfo=UTC),
                0.5,
                "general",
                "watch",
                "competitor",
                "escalated",
                case="a4",
                ended=at(10, 18),
                value=(10.0, 20.0),
            ),
        ],
    )

    def task(
        tid: str, aid: str, cid: str, ts: datetime, action: str, reason: str, tier: str, status: str
    ) -> dict[str, Any]:
        return {
            "task_id": tid,
            "alert_id": aid,
            "customer_id": cid,
            "ts": ts,
            "action": action,
            "channel": "phone",
            "priority": 1,
            "due_by": ts + timedelta(days=2),
            "owner_queue": "retention",
            "reason": reason,
            "value_tier": tier,
            "risk_level": "high",
            "status": status,
            "created_at": ts,
        }

    conn.execute(
        sa.insert(store.winback_tasks),
        [
            task(
                "t1", "a1", "c1", at(10, 12), "personal call", "service_quality", "high", "won_back"
            ),
            task("t2", "a2", "c3", at(10, 18), "coupon", "competitor", "general", "lost"),
            task(
                "t3", "a3", "c2", at(20, 6), "personal call", "service_quality", "potential", "open"
            ),
            task(
                "t4",
                "a4",
                "c3",
                datetime(2026, 2, 10, tzinfo=UTC),
                "coupon",
                "competitor",
                "general",
                "escalated",
            ),
        ],
    )
    conn.execute(
        sa.insert(store.case_owners),
        [{"case_id": "a3", "owner": "ann", "assigned_by": "lead", "assigned_at": at(21)}],
    )
    conn.execute(
        sa.insert(store.winback_outcomes),
        [
            {
                "outcome_id": "o1",
                "task_id": "t1",
                "status": "contacted",
                "ts": at(11),
                "created_at": at(11),
            },
            {
                "outcome_id": "o2",
                "task_id": "t2",
                "status": "failed",
                "ts": at(12),
                "created_at": at(12),
            },
        ],
    )
    changes = [
        ("k1", "c1", at(5), "lifecycle_stage", "active", "cooling"),
        ("k2", "c1", at(9), "lifecycle_stage", "cooling", "at_risk"),
        ("k3", "c3", at(8), "lifecycle_stage", "active", "cooling"),
        ("k4", "c3", at(10), "lifecycle_stage", "cooling", "at_risk"),
        ("k5", "c4", datetime(2026, 1, 5, tzinfo=UTC), "lifecycle_stage", "at_risk", "lapsed"),
        ("k6", "c1", at(6), "value_tier", "potential", "high"),
    ]
    conn.execute(
        sa.insert(store.customer_changes),
        [
            {
                "change_id": k,
                "customer_id": c,
                "ts": ts,
                "field": f,
                "from_value": a,
                "to_value": b,
                "cause": "test",
                "created_at": ts,
            }
            for k, c, ts, f, a, b in changes
        ],
    )
    events = [
        ("e1", "c1", "engagement", "survey_response", at(2, 9), {"satisfaction": 2}),
        ("e2", "c1", "complaints", "complaint_opened", at(3), {"complaint_id": "K1"}),
        (
            "e3",
            "c1",
            "complaints",
            "complaint_resolved",
            at(3, 12),
            {"complaint_id": "K1", "satisfaction": 4},
        ),
        ("e4", "c3", "complaints", "complaint_opened", at(4), {"complaint_id": "K2"}),
        ("e5", "c3", "complaints", "complaint_resolved", at(5), {"complaint_id": "K2"}),
        ("e6", "c2", "engagement", "login", at(6), {}),
    ]
    conn.execute(
        sa.insert(store.events),
        [
            {
                "event_id": e,
                "customer_id": c,
                "topic": t,
                "type": ty,
                "ts": ts,
                "payload": {"event_id": e, "customer_id": c, "type": ty, **p},
                "stored_at": ts,
            }
            for e, c, t, ty, ts, p in events
        ],
    )


@pytest.fixture
def seeded_pg(pg_url: str) -> Iterator[sa.Engine]:
    engine = store.make_engine(pg_url)
    store.upgrade(engine)
    with engine.begin() as conn:
        _seed(conn)
    yield engine
    engine.dispose()


def _run(
    engine: sa.Engine,
    panel: panels.SqlPanel,
    span: tuple[datetime, datetime] = (FROM, TO),
    **variables: list[str],
) -> list[tuple]:
    ctx = QueryContext(*span, "1d", {**ALL, **variables})
    with engine.connect() as conn:
        result = conn.execute(sa.text(expand(panel.sql, ctx)))
        columns = list(result.keys())
        rows = [tuple(_plain(v) for v in row) for row in result]
    return [tuple(columns), *rows]


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


@pytest.mark.postgres
def test_every_sql_panel_returns_exact_rows_on_postgresql(seeded_pg: sa.Engine) -> None:
    e = seeded_pg
    cases = _run(e, panels.OPEN_CASES)
    assert cases == [
        (
            "customer",
            "tier",
            "level",
            "reason",
            "value_at_risk",
            "clv",
            "p_alive",
            "score",
            "action",
            "owner",
            "region",
            "industry",
            "channel",
            "segment",
            "opened",
            "status",
        ),
        # open cases only (c1's was won back), most value at risk first; c3's case opened
        # with its February alert
        (
            "c2",
            "potential",
            "high",
            "service_quality",
            62.49,
            100.0,
            0.421,
            0.625,
            "personal call",
            "ann",
            "north",
            None,
            "online",
            None,
            at(20, 6),
            "open",
        ),
        (
            "c3",
            "general",
            "watch",
            "competitor",
            30.25,
            55.0,
            None,
            0.55,
            "coupon",
            None,
            "south",
            None,
            None,
            None,
            datetime(2026, 2, 10, tzinfo=UTC),
            "acknowledged",
        ),
    ]
    # Grafana's "All" and a single choice are both lists of quoted values
    only_high = _run(e, panels.OPEN_CASES, tier=["high", "potential"])
    assert [row[0] for row in only_high[1:]] == ["c2"]
    south = _run(e, panels.OPEN_CASES, region=["south"])
    assert [row[0] for row in south[1:]] == ["c3"]
    assert [row[0] for row in _run(e, panels.OPEN_CASES, channel=["offline"])[1:]] == []
    for name, sql in panels.SEGMENT_VALUES_SQL.items():
        with e.connect() as conn:
            values = [r[0] for r in conn.execute(sa.text(sql))]
        assert (
            values
            == {
                "region": ["north", "south"],
                "industry": ["retail"],
                "channel": ["online"],
                "segment": [],
            }[name]
        )

    assert _run(e, panels.ALERTS_OVER_TIME) == [
        ("time", "metric", "alerts"),
        (epoch(10), "competitor", 1),
        (epoch(10), "service_quality", 1),
        (epoch(20), "service_quality", 1),
    ]
    assert _run(e, panels.RISK_BY_TIER) == [
        ("tier", "0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"),
        ("high", 0, 0, 0, 0, 1),
        ("potential", 0, 1, 0, 0, 0),
        ("general", 1, 0, 1, 0, 0),
    ]
    assert _run(e, panels.STAGES) == [
        ("stage", "customers"),
        ("at_risk", 2),
        ("active", 1),
        ("lapsed", 1),
        ("prospect", 1),
    ]
    assert _run(e, panels.TRANSITIONS) == [
        ("from", "to", "customers"),
        ("active", "cooling", 2),
        ("cooling", "at_risk", 2),
    ]
    funnel = ("tasks", "held_out", "contacted", "won_back")
    # contacted: the CRM reported reaching the customer; a "failed" report does not count
    assert _run(e, panels.FUNNEL) == [funnel, (3, 0, 1, 1)]
    assert _run(e, panels.FUNNEL, reason=["competitor"]) == [funnel, (1, 0, 0, 0)]
    assert _run(e, panels.RETURN_RATE) == [
        ("reason", "action", "tasks", "settled", "won_back", "return_rate"),
        ("competitor", "coupon", 1, 1, 0, 0.0),
        ("service_quality", "personal call", 2, 1, 1, 1.0),
    ]
    assert _run(e, panels.SATISFACTION) == [
        ("time", "satisfaction"),
        (epoch(2), 2.0),
        (epoch(3), 4.0),
    ]
    assert _run(e, panels.SATISFACTION, tier=["general"]) == [("time", "satisfaction")]
    assert _run(e, panels.RESOLUTION) == [
        ("time", "resolution_hours"),
        (epoch(3), 12.0),
        (epoch(5), 24.0),
    ]


def test_every_sql_panel_is_tested() -> None:
    source = Path(__file__).read_text()
    for panel in panels.sql_panels():
        name = next(k for k, v in vars(panels).items() if v is panel)
        assert f"panels.{name})" in source, f"panel {panel.key} has no exact-rows check"


def test_macros_expand_as_grafana_does() -> None:
    ctx = QueryContext(FROM, TO, "5m", {"tier": ["high", "o'brien"]})
    sql = "SELECT $__timeGroupAlias(ts, $__interval) WHERE $__timeFilter(ts) AND t IN ($tier)"
    assert expand(sql, ctx) == (
        'SELECT floor(extract(epoch from ts)/300)*300 AS "time" '
        "WHERE ts BETWEEN '2026-03-01T00:00:00Z' AND '2026-03-31T00:00:00Z' "
        "AND t IN ('high','o''brien')"
    )
    with pytest.raises(KeyError, match=r"\$reason"):
        expand("WHERE r IN (${reason})", ctx)


def test_exported_json_is_committed_and_valid_for_the_sdk(tmp_path: Path) -> None:
    written = export(tmp_path)
    committed = GRAFANA / "dashboards"
    assert sorted(p.name for p in written) == sorted(p.name for p in committed.glob("*.json"))
    for path in written:
        # the files in deploy/ are what `dashboard export` writes today
        assert path.read_bytes() == (committed / path.name).read_bytes(), (
            f"{path.name} is stale: run churnwatch dashboard export"
        )
        model = json.loads(path.read_text())
        # decoding into the SDK's typed model and encoding again loses nothing
        typed = Dashboard.from_json(model)
        assert json.loads(json.dumps(typed.to_json(), default=lambda o: o.to_json())) == model
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids))
        for panel in model["panels"]:
            assert panel["gridPos"]["w"] > 0 and panel["targets"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
        names = {v["name"] for v in model["templating"].get("list", [])}
        text = json.dumps(model)
        for used in set(re.findall(r"\$\{?(tier|reason|region|industry|channel|segment)\b", text)):
            assert used in names
    assert set(build_all()) == {"churnwatch-alerts", "churnwatch-trends", "churnwatch-worker"}
    # a blank CLV or p alive in the open-cases table says why
    table = next(
        p for p in build_all()["churnwatch-alerts"]["panels"] if p["title"].startswith("Open")
    )
    blank = {
        o["matcher"]["options"]: o["properties"][0]["value"][0]
        for o in table["fieldConfig"]["overrides"]
        if o["matcher"]["options"] in ("clv", "p_alive")
    }
    assert {name: m["options"]["match"] for name, m in blank.items()} == {
        "clv": "null",
        "p_alive": "null",
    }


def test_provisioning_references_the_exported_dashboards_and_their_sources() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/churnwatch.yaml").read_text())
    by_uid = {s["uid"]: s for s in sources["datasources"]}
    assert by_uid[POSTGRES.uid]["type"] == POSTGRES.type_val
    assert by_uid[PROMETHEUS.uid]["type"] == PROMETHEUS.type_val
    used = set()
    for path in (GRAFANA / "dashboards").glob("*.json"):
        model = json.loads(path.read_text())
        # every panel reads through a data source variable, so that an import by hand
        # into another Grafana can choose its own; each defaults to a provisioned source
        chosen = {
            v["name"]: (v["current"]["value"], v["query"])
            for v in model["templating"]["list"]
            if v["type"] == "datasource"
        }
        assert chosen == {
            "postgres": (POSTGRES.uid, POSTGRES.type_val),
            "prometheus": (PROMETHEUS.uid, PROMETHEUS.type_val),
        }
        for panel in model["panels"]:
            name = panel["datasource"]["uid"].removeprefix("${").removesuffix("}")
            assert chosen[name][1] == panel["datasource"]["type"]
            used.add(chosen[name])
    assert used == {(uid, s["type"]) for uid, s in by_uid.items()}

    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/churnwatch.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/churnwatch"


def _alerting() -> dict[str, Any]:
    return yaml.safe_load((GRAFANA / "provisioning/alerting/churnwatch.yaml").read_text())


def test_the_alert_rules_read_provisioned_sources_and_their_conditions_exist() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/churnwatch.yaml").read_text())
    uids = {s["uid"] for s in sources["datasources"]} | {"__expr__"}
    config = _alerting()
    assert config["apiVersion"] == 1
    (group,) = config["groups"]
    titles = set()
    for rule in group["rules"]:
        refs = {query["refId"] for query in rule["data"]}
        assert rule["condition"] in refs, rule["uid"]
        for query in rule["data"]:
            assert query["datasourceUid"] in uids and query["model"]["refId"] == query["refId"]
            expression = query["model"].get("expression")
            assert expression is None or expression in refs  # a step reads an earlier one
        titles.add(rule["title"])
    assert titles == {
        "Value at risk of open critical cases",
        "Records dead-lettered",
        "No churnwatch worker is up",
        "Consumer lag above 10,000 records",
    }
    # the Prometheus rules read metrics the worker exports and the job Prometheus scrapes
    exported = (ROOT / "streams/metrics.py").read_text()
    jobs = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {job["job_name"] for job in jobs["scrape_configs"]}
    for rule in group["rules"]:
        expr = rule["data"][0]["model"].get("expr")
        if expr is None:
            continue
        for metric in re.findall(r"churnwatch_\w+", expr):
            assert f'"{metric}"' in exported or f'"{metric.removesuffix("_total")}"' in exported
        for job in re.findall(r'job="([^"]+)"', expr):
            assert job in scraped
    (point,) = config["contactPoints"]
    assert point["receivers"][0]["settings"]["url"] == "${CHURNWATCH_ALERT_WEBHOOK_URL}"
    # Grafana reads the folder the compose file mounts, and gets the webhook's address
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "CHURNWATCH_ALERT_WEBHOOK_URL" in grafana["environment"]


@pytest.mark.postgres
def test_the_value_at_risk_rule_sums_the_open_critical_cases(seeded_pg: sa.Engine) -> None:
    (group,) = _alerting()["groups"]
    rule = next(r for r in group["rules"] if r["uid"] == "churnwatch-critical-value-at-risk")
    sql = rule["data"][0]["model"]["rawSql"]
    with seeded_pg.connect() as conn:
        assert conn.execute(sa.text(sql)).scalar_one() == 0  # c1's critical case was won back
        conn.execute(sa.text("UPDATE alerts SET risk_level = 'critical' WHERE alert_id = 'a3'"))
        assert conn.execute(sa.text(sql)).scalar_one() == 62.49
        conn.rollback()


class _Grafana(BaseHTTPRequestHandler):
    """Records each request; answers 404 to reads of what ``missing`` lists."""

    calls: list[tuple[str, str, Any, str | None]]
    missing: set[str]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((self.command, self.path, body, self.headers.get("Authorization")))
        status = 404 if self.command == "GET" and self.path in self.missing else 200
        payload = json.dumps({"message": "not found"} if status == 404 else {"id": 1}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[tuple[str, type[_Grafana]]]:
    handler = type("Recorder", (_Grafana,), {"calls": [], "missing": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_push_creates_sources_folder_and_dashboards_then_updates(grafana) -> None:
    url, recorder = grafana
    recorder.missing = {
        "/api/datasources/uid/churnwatch-postgres",
        "/api/datasources/uid/churnwatch-prometheus",
        "/api/folders/churnwatch",
    }
    args = [
        "dashboard",
        "push",
        "--url",
        url,
        "--token",
        "s3cret",
        "--db-url",
        "postgresql://grafana:pw@db.internal:5433/churn",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    calls = [(method, path) for method, path, _, _ in recorder.calls]
    assert calls == [
        ("GET", "/api/datasources/uid/churnwatch-postgres"),
        ("POST", "/api/datasources"),
        ("GET", "/api/datasources/uid/churnwatch-prometheus"),
        ("POST", "/api/datasources"),
        ("GET", "/api/folders/churnwatch"),
        ("POST", "/api/folders"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
    ]
    assert {auth for *_, auth in recorder.calls} == {"Bearer s3cret"}
    postgres = recorder.calls[1][2]
    assert postgres["url"] == "db.internal:5433" and postgres["user"] == "grafana"
    assert postgres["jsonData"]["database"] == "churn"
    assert postgres["secureJsonData"] == {"password": "pw"}
    assert recorder.calls[5][2] == {"title": "churnwatch", "uid": "churnwatch"}
    saved = [body for method, path, body, _ in recorder.calls if path == "/api/dashboards/db"]
    assert [b["dashboard"]["uid"] for b in saved] == list(build_all())
    assert all(b["overwrite"] and b["folderUid"] == "churnwatch" for b in saved)

    # a second push finds everything and updates in place
    recorder.calls.clear()
    recorder.missing = set()
    assert CliRunner().invoke(app, args).exit_code == 0
    assert [(m, p) for m, p, _, _ in recorder.calls][:4] == [
        ("GET", "/api/datasources/uid/churnwatch-postgres"),
        ("PUT", "/api/datasources/uid/churnwatch-postgres"),
        ("GET", "/api/datasources/uid/churnwatch-prometheus"),
        ("PUT", "/api/datasources/uid/churnwatch-prometheus"),
    ]


def test_push_refuses_a_store_grafana_cannot_read(grafana) -> None:
    url, recorder = grafana
    result = CliRunner().invoke(
        app, ["dashboard", "push", "--url", url, "--db-url", "sqlite:///x.db"]
    )
    assert result.exit_code == 2
    assert "PostgreSQL" in result.output
    assert recorder.calls == []


def test_push_reads_its_secrets_from_files_and_refuses_the_store_login(
    grafana, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, recorder = grafana
    token, reader = tmp_path / "token", tmp_path / "db_url"
    token.write_text("from-a-file\n")
    reader.write_text("postgresql://grafana:pw@db.internal:5433/churn?sslmode=require\n")
    args = ["dashboard", "push", "--url", url, "--token-file", token, "--db-url-file", reader]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "checked the login 'grafana' by name" in result.output
    assert {auth for *_, auth in recorder.calls} == {"Bearer from-a-file"}
    assert recorder.calls[1][2]["jsonData"]["sslmode"] == "require"

    recorder.calls.clear()
    monkeypatch.setenv("CHURNWATCH_DB_URL", "postgresql+psycopg://grafana:x@db.internal/churn")
    refused = CliRunner().invoke(app, [str(a) for a in args])
    assert refused.exit_code == 2 and "the store's own login" in refused.output
    assert recorder.calls == []


@pytest.mark.postgres
def test_the_uplift_panel_gives_the_figures_of_winback_report(pg_url: str) -> None:
    engine = store.make_engine(pg_url)
    store.upgrade(engine)
    winback_seed.seed(engine)
    winback_seed.seed_holdouts(engine)
    span = (T0 - timedelta(days=1), T0 + timedelta(days=60))
    in_span = partial(_run, span=span)
    rows = in_span(engine, panels.UPLIFT)
    assert rows == [
        (
            "reason",
            "tier",
            "action",
            "treated",
            "control",
            "uplift",
            "uplift_low",
            "uplift_high",
            "evidence",
        ),
        # 1 of 3 treated came back, 1 of 4 held out: the interval worked by hand in
        # tests/integration/test_winback_views.py
        (
            "competitor",
            "high",
            "targeted offer",
            3,
            4,
            0.0833,
            -0.4419,
            0.5858,
            "not enough",
        ),
    ]
    (reported,) = fetch(engine)["uplift_by_tier"]
    assert (reported["uplift"], reported["uplift_low"], reported["uplift_high"]) == rows[1][5:8]
    engine.dispose()
