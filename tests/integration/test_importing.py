"""``churnwatch import``: every mapping option, bad rows, a malformed file, re-import."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.offline.importing import BATCH, ImportFailed, RowMapping, import_file

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
    assert summary == {
        "rows": 9,
        "stored": 4,
        "already_stored": 0,
        "rejected": 5,
        "top_reasons": {"customer_id": 1, "ts": 2, "amount": 2},
    }
    assert [(r["row"], r["error"]) for r in rejects] == [
        (5, "customer_id: Field required"),
        (6, "ts: '31/02/2025 08:34' does not match --date-format '%d/%m/%Y %H:%M'"),
        (7, "amount: 'abc' is not a number"),
        (8, "amount: Input should be greater than 0 (got 0.0)"),
        (9, "ts: 2029-12-04T08:34:00+00:00 is 30776.6 h in the future"),
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
    assert [r["error"][:40] for r in rejects] == [
        "duplicate event_id 'k1': row 1 has it",
        "unknown type 'login' on topic complaints",
        "not valid JSON: unexpected character, ex",
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
    with pytest.raises(ImportFailed, match="line"):
        _import(engine, path, RETAIL)
    assert store.count_rows(engine, store.events) == 0
    with pytest.raises(ImportFailed, match="no column for ts=Date"):
        _import(engine, path, RowMapping(columns={"ts": "Date"}))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(ImportFailed, match="not a readable Parquet file"):
        _import(engine, bad, RETAIL)
