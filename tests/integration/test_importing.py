"""``churnwatch import``: every mapping option, bad rows, a malformed file, re-import."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.offline.importing import (
    BATCH,
    FAR_AFTER,
    FAR_BEFORE,
    ImportFailed,
    RowMapping,
    import_file,
    reason_of,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RETAIL = RowMapping(
    columns={
        "customer_id": "CustomerID",
        "ts": "InvoiceDate",
        "amount": "Sales",
        "order_id": "Invoice",
    },
    constants={"currency": "GBP", "channel": "store"},
    default_type="purchase",
    date_format="%d/%m/%Y %H:%M",
    negative_as_refund=True,
)
CSV = """Invoice,CustomerID,InvoiceDate,Sales,Country
536365,17850,01/12/2025 08:26,15.30,UK
536365,17850,01/12/2025 08:26,15.30,UK
536366,17850,02/12/2025 09:00,-11.10,UK
536367,13047,03/12/2025 10:34,54.08,FR
536368,,03/12/2025 10:34,3.00,FR
536369,13047,31/02/2025 08:34,3.00,FR
536370,13047,04/12/2025 08:34,abc,FR
536371,13047,04/12/2025 08:34,0,FR
536372,13047,04/12/2029 08:34,5,FR
"""


def _import(engine: sa.Engine, path: Path, mapping: RowMapping) -> tuple[dict, list[dict]]:
    rejects = io.BytesIO()
    summary = import_file(engine, path, mapping, rejects=rejects, now=NOW, max_future_s=86400)
    lines = [orjson.loads(line) for line in rejects.getvalue().splitlines()]
    return summary.to_dict(), lines


def _stored(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                store.events.c.customer_id, store.events.c.type, store.events.c.payload
            ).order_by(store.events.c.ts, store.events.c.event_id)
        ).all()
    return [(cid, kind, p["amount"], p["ts"], p["Country"]) for cid, kind, p in rows]


def test_a_retail_csv_maps_converts_rejects_and_reimports_as_nothing(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(CSV)
    summary, rejects = _import(engine, path, RETAIL)
    counts = ("rows", "stored", "already_stored", "rejected", "top_reasons", "far_out")
    assert {k: summary[k] for k in counts} == {
        "rows": 9,
        "stored": 4,
        "already_stored": 0,
        "rejected": 5,
        "top_reasons": {"customer_id": 1, "ts": 2, "amount": 2},
        "far_out": {},
    }
    assert [(r["row"], r["reason"], r["error"]) for r in rejects] == [
        (5, "customer_id", "customer_id: Field required"),
        (6, "ts", "ts: '31/02/2025 08:34' does not match --date-format '%d/%m/%Y %H:%M'"),
        (7, "amount", "amount: 'abc' is not a number"),
        (8, "amount", "amount: Input should be greater than 0 (got 0.0)"),
        (9, "ts", "ts: 2029-12-04T08:34:00+00:00 is 30776.6 h in the future (limit 24.0 h)"),
    ]
    assert summary["examples"]["amount"] == [
        {"row": 7, "error": "amount: 'abc' is not a number"},
        {"row": 8, "error": "amount: Input should be greater than 0 (got 0.0)"},
    ]
    assert rejects[0]["raw"]["Invoice"] == "536368"
    # two identical rows are two purchases; the negative one is a refund; extra columns kept
    assert _stored(engine) == [
        ("17850", "purchase", 15.3, "2025-12-01T08:26:00+00:00", "UK"),
        ("17850", "purchase", 15.3, "2025-12-01T08:26:00+00:00", "UK"),
        ("17850", "refund", 11.1, "2025-12-02T09:00:00+00:00", "UK"),
        ("13047", "purchase", 54.08, "2025-12-03T10:34:00+00:00", "FR"),
    ]
    again, _ = _import(engine, path, RETAIL)
    assert (again["stored"], again["already_stored"], again["rejected"]) == (0, 4, 5)
    assert store.count_rows(engine, store.events) == 4


def test_jsonl_and_parquet_with_their_own_ids_types_and_topics(
    engine: sa.Engine, tmp_path: Path
) -> None:
    lines = [
        {
            "event_id": "k1",
            "customer_id": "a",
            "ts": "2026-01-02T00:00:00Z",
            "kind": "complaint_opened",
            "complaint_id": "k1",
            "category": "price",
            "severity": 2,
        },
        {
            "event_id": "k1",
            "customer_id": "a",
            "ts": "2026-01-03T00:00:00Z",
            "kind": "complaint_opened",
            "complaint_id": "k1",
            "category": "price",
            "severity": 2,
        },
        {"event_id": "k2", "customer_id": "a", "ts": "2026-01-03T00:00:00Z", "kind": "login"},
    ]
    path = tmp_path / "complaints.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines) + b"{not json\n")
    mapping = RowMapping(columns={"type": "kind"}, topic="complaints")
    summary, rejects = _import(engine, path, mapping)
    assert (summary["stored"], summary["rejected"]) == (1, 3)
    assert [(r["reason"], r["error"][:40]) for r in rejects] == [
        ("duplicate event_id", "duplicate event_id: row 1 has 'k1'"),
        ("unknown type 'login' on topic complaints", "unknown type 'login' on topic complaints"),
        ("not valid JSON", "not valid JSON: unexpected character, ex"),
    ]

    table = pa.table(
        {
            "cust": ["p", "p"],
            "when": pa.array(
                [datetime(2026, 2, 1, 12), datetime(2026, 2, 2, 12)], pa.timestamp("ms")
            ),
            "channel": ["email_open", "member_event"],
        }
    )
    parquet = tmp_path / "engagement.parquet"
    pq.write_table(table, parquet)
    mapping = RowMapping(columns={"customer_id": "cust", "ts": "when", "type": "channel"})
    summary, rejects = _import(engine, parquet, mapping)
    assert (summary["stored"], summary["rejected"]) == (2, 0)
    with engine.connect() as conn:
        kinds = conn.execute(
            sa.select(store.events.c.type, store.events.c.ts)
            .where(store.events.c.customer_id == "p")
            .order_by(store.events.c.ts)
        ).all()
    assert [(k, ts.replace(tzinfo=UTC).isoformat()[:19]) for k, ts in kinds] == [
        ("email_open", "2026-02-01T12:00:00"),
        ("member_event", "2026-02-02T12:00:00"),
    ]


def test_a_file_that_cannot_be_read_stores_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    # good rows first, then bytes that are not UTF-8: nothing may be half-written
    good = "".join(f"{i},c{i},01/12/2025 08:26,5.0,UK\n" for i in range(BATCH + 1))
    path.write_bytes(
        ("Invoice,CustomerID,InvoiceDate,Sales,Country\n" + good).encode() + b"\xff\xfe,x\n"
    )
    # the encoding given: a file that is not all of it fails at its first bad line
    with pytest.raises(ImportFailed, match=f"broken.csv line {BATCH + 3} is not UTF-8 text"):
        _import(engine, path, replace(RETAIL, encoding="utf-8"))
    assert store.count_rows(engine, store.events) == 0
    with pytest.raises(ImportFailed, match="no column for ts=Date"):
        _import(engine, path, RowMapping(columns={"ts": "Date"}))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(ImportFailed, match="not a readable Parquet file"):
        _import(engine, bad, RETAIL)


def test_a_reason_names_every_field_it_is_about() -> None:
    assert reason_of("customer_id: Field required; ts: Field required") == "customer_id, ts"
    assert reason_of("items.0.price: Field required; items.1.price: x") == (
        "items.0.price, items.1.price"
    )
    assert reason_of("ts: '31/02' does not match --date-format '%d/%m'") == "ts"
    assert reason_of("not valid JSON: unexpected character") == "not valid JSON"
    assert reason_of("missing field 'type' (map a column to it, or give --type)") == (
        "missing field 'type'"
    )
    assert reason_of("unknown type 'x' on topic engagement (expected: login)") == (
        "unknown type 'x' on topic engagement"
    )


#: a purchase every day at noon for 40 customers, 2025-07-01 to 2025-12-31
BULK_DAYS = 184
BULK_START = datetime(2025, 7, 1, 12, tzinfo=UTC)


def _purchase(customer: int, when: datetime) -> dict:
    return {
        "customer_id": f"c{customer}",
        "ts": when.isoformat(),
        "type": "purchase",
        "amount": 10.0 + customer,
        "currency": "EUR",
        "order_id": f"o{customer}-{when:%Y%m%d}",
        "channel": "online",
    }


def _file_with_far_rows(tmp_path: Path) -> Path:
    """The bulk, with 30 copies dated 400 days back, a 1970 date and one 4 months after.

    The far rows come first (rows 1-32), the bulk after them.
    """
    bulk = [
        _purchase(c, BULK_START + timedelta(days=d)) for d in range(BULK_DAYS) for c in range(40)
    ]
    late = [
        {**row, "ts": (datetime.fromisoformat(row["ts"]) - timedelta(days=400)).isoformat()}
        for row in bulk[:30]
    ]
    epoch = _purchase(1, datetime(1970, 1, 1, tzinfo=UTC))
    after = _purchase(2, datetime(2026, 5, 1, tzinfo=UTC))
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [*late, epoch, after, *bulk]))
    return path


def test_far_out_rows_are_stored_and_counted_per_reason(engine: sa.Engine, tmp_path: Path) -> None:
    path = _file_with_far_rows(tmp_path)
    summary, rejects = _import(engine, path, RowMapping())
    rows = 32 + 40 * BULK_DAYS
    assert (summary["rows"], summary["stored"], summary["rejected"], rejects) == (rows, rows, 0, [])
    assert summary["far_out"] == {FAR_BEFORE: 31, FAR_AFTER: 1}
    assert (summary["flagged"], summary["far_out_action"]) == (32, "stored and flagged")
    # the bulk: first to last purchase, and a quarter of its length on either side
    assert summary["bulk"] == {
        "from": "2025-07-01T12:00:00+00:00",
        "to": "2025-12-31T12:00:00+00:00",
        "margin_days": 45.8,
    }
    assert summary["examples"][FAR_BEFORE] == [
        {
            "row": 1,
            "error": "ts: 2024-05-27T12:00:00+00:00 is 400 days before the dense part of the "
            "file's history, 2025-07-01T12:00:00+00:00 to 2025-12-31T12:00:00+00:00",
        },
        {"row": 2, "error": summary["examples"][FAR_BEFORE][0]["error"]},
        {"row": 3, "error": summary["examples"][FAR_BEFORE][0]["error"]},
    ]
    assert summary["examples"][FAR_AFTER] == [
        {
            "row": 32,
            "error": "ts: 2026-05-01T00:00:00+00:00 is 120 days after the dense part of the "
            "file's history, 2025-07-01T12:00:00+00:00 to 2025-12-31T12:00:00+00:00",
        }
    ]
    assert store.count_rows(engine, store.events) == rows


def test_strict_rejects_far_out_rows_before_writing_them(engine: sa.Engine, tmp_path: Path) -> None:
    path = _file_with_far_rows(tmp_path)
    rejects = io.BytesIO()
    summary = import_file(
        engine, path, RowMapping(), rejects=rejects, now=NOW, max_future_s=86400, strict=True
    )
    lines = [orjson.loads(line) for line in rejects.getvalue().splitlines()]
    assert (summary.stored, summary.rejected, summary.flagged) == (40 * BULK_DAYS, 32, 0)
    assert summary.reasons == summary.far_out == {FAR_BEFORE: 31, FAR_AFTER: 1}
    assert [(r["row"], r["reason"]) for r in lines] == [
        *((n, FAR_BEFORE) for n in range(1, 32)),
        (32, FAR_AFTER),
    ]
    assert lines[30]["error"].startswith("ts: 1970-01-01T00:00:00+00:00 is 20270 days before")
    with engine.connect() as conn:
        first, last = conn.execute(
            sa.select(sa.func.min(store.events.c.ts), sa.func.max(store.events.c.ts))
        ).one()
    assert (first.replace(tzinfo=UTC), last.replace(tzinfo=UTC)) == (
        BULK_START,
        BULK_START + timedelta(days=BULK_DAYS - 1),
    )
    # three times the bulk's length takes the copies and the May row in; 1970 stays out
    wider = import_file(
        engine,
        path,
        RowMapping(),
        rejects=io.BytesIO(),
        now=NOW,
        max_future_s=86400,
        strict=True,
        far_margin=3.0,
    )
    assert (wider.stored, wider.far_out) == (31, {FAR_BEFORE: 1})


def test_an_import_that_rejects_every_row_says_every_reason(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    rejects = io.BytesIO()
    summary = import_file(
        engine,
        path,
        RowMapping(default_type="login"),
        rejects=rejects,
        now=NOW,
        max_future_s=86400,
    )
    assert summary.all_rejected and summary.bulk is None
    assert summary.reasons == {"customer_id, ts": 2}
    assert store.count_rows(engine, store.events) == 0


def _import_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "churnwatch", "import", *args],
        env={**os.environ, "CHURNWATCH_DB_URL": f"sqlite:///{tmp_path / 'store.db'}"},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


def test_the_import_command_flags_rejects_and_fails_when_nothing_is_left(tmp_path: Path) -> None:
    path = _file_with_far_rows(tmp_path)
    out = _import_cli(tmp_path, path.name)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[
        lines.index(f"{7392:,} rows: {7392:,} stored, 0 already stored, 0 rejected") :
    ] == [
        f"{7392:,} rows: {7392:,} stored, 0 already stored, 0 rejected",
        "32 rows far outside the dense part of the file's history, 2025-07-01T12:00:00+00:00 to "
        "2025-12-31T12:00:00+00:00, by more than 46 days: stored, but flagged (--strict rejects)",
        f"  31: {FAR_BEFORE} (rows 1, 2, 3, …)",
        f"  1: {FAR_AFTER} (rows 32)",
    ]

    out = _import_cli(tmp_path, path.name, "--strict", "--json")
    assert out.returncode == 0, out.stderr
    summary = orjson.loads(out.stdout)
    assert (summary["already_stored"], summary["rejected"]) == (40 * BULK_DAYS, 32)
    assert summary["far_out_action"] == "rejected"
    assert len((tmp_path / "history.jsonl.rejects.jsonl").read_bytes().splitlines()) == 32

    # every row rejected: exit 2, every reason named, the rows in the rejects file
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n3,x\n")
    out = _import_cli(tmp_path, "wrong.csv", "--type", "purchase")
    assert out.returncode == 2
    fields = "customer_id, ts, amount, currency, order_id, channel"
    lines = out.stdout.splitlines()
    assert lines[lines.index("2 rows: 0 stored, 0 already stored, 2 rejected") :][:2] == [
        "2 rows: 0 stored, 0 already stored, 2 rejected",
        f"  2: {fields} (row 1: customer_id: Field required; ts: Field required; amount: "
        "Field required; currency: Field required; order_id: Field required; channel: Field "
        "required)",
    ]
    # every failing field with its count of rows, not only the first
    counted = "; ".join(f"{name}: 2 rows" for name in fields.split(", "))
    assert out.stderr == (
        f"cannot import wrong.csv: every one of its 2 rows was rejected ({counted}); nothing "
        "was stored. Check --map, --set, --type, --date-format, --encoding and --delimiter "
        "against the file's columns\n"
    )
    assert len((tmp_path / "wrong.csv.rejects.jsonl").read_bytes().splitlines()) == 2
