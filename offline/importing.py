"""``churnwatch import FILE``: historic events from CSV, JSONL or Parquet into the store.

Each row is mapped to an event (column mapping, constant fields, a default
``type``, a date format), validated by the same models as the live topics, and
either stored or written, with its reason, to the rejects file. A row without
an ``event_id`` gets one derived from its content (and how many identical rows
came before it), so importing the same file again adds nothing.

The whole file goes in one transaction: a file that cannot be read to the end
leaves the store as it was. Rows go in batches; on PostgreSQL through ``COPY``
into a temporary table, then one ``INSERT … ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import csv
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from churnwatch import store
from churnwatch.events import TOPIC_OF_TYPE, InvalidEvent, parse_object, payload_of

_ID_NAMESPACE = uuid.UUID("5d0c2f44-8a7e-4b1b-9c53-3f6e2b7a9d10")
#: fields that text files carry as strings but the event models want as numbers
_NUMBERS: dict[str, Callable[[str], Any]] = {
    "amount": float,
    "severity": int,
    "satisfaction": int,
    "nps": int,
    "points": int,
}
BATCH = 5000


class ImportFailed(Exception):
    """The file cannot be imported at all (unreadable, or the mapping does not fit it)."""


@dataclass(frozen=True)
class RowMapping:
    """How a file's rows become events."""

    #: event field → file column
    columns: Mapping[str, str] = field(default_factory=dict)
    #: event field → constant value for every row
    constants: Mapping[str, str] = field(default_factory=dict)
    topic: str | None = None
    default_type: str | None = None
    #: ``strptime`` format of ``ts`` (naive times are taken as UTC)
    date_format: str | None = None
    #: a negative purchase amount is a refund of that amount
    negative_as_refund: bool = False

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The event fields of ``row`` (not yet validated)."""
        mapped = set(self.columns.values())
        out = {k: v for k, v in row.items() if k not in mapped}
        for name, column in self.columns.items():
            out[name] = row.get(column)
        out.update(self.constants)
        out = {k: v for k, v in out.items() if v is not None and v != ""}
        if "type" not in out and self.default_type:
            out["type"] = self.default_type
        for name, convert in _NUMBERS.items():
            if isinstance(out.get(name), str):
                try:
                    out[name] = convert(out[name].strip())
                except ValueError:
                    raise InvalidEvent(f"{name}: {out[name]!r} is not a number") from None
        if self.date_format and isinstance(out.get("ts"), str):
            try:
                ts = datetime.strptime(out["ts"].strip(), self.date_format)
            except ValueError:
                raise InvalidEvent(
                    f"ts: {out['ts']!r} does not match --date-format {self.date_format!r}"
                ) from None
            out["ts"] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()
        amount = out.get("amount")
        if self.negative_as_refund and out.get("type") == "purchase" and _negative(amount):
            out["type"], out["amount"] = "refund", -amount  # type: ignore[operator]
        return out


def _negative(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value < 0


@dataclass
class Summary:
    """What an import did."""

    rows: int = 0
    stored: int = 0
    already_stored: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the five commonest reasons for rejection."""
        return {
            "rows": self.rows,
            "stored": self.stored,
            "already_stored": self.already_stored,
            "rejected": self.rejected,
            "top_reasons": dict(self.reasons.most_common(5)),
        }


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a CSV, JSONL or Parquet file, as dicts (by file suffix)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        yield from _jsonl_rows(path)
    elif suffix in (".parquet", ".pq"):
        yield from _parquet_rows(path)
    else:
        raise ImportFailed(
            f"{path.name}: unknown file type {suffix!r} (use .csv, .jsonl, .parquet)"
        )


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        try:
            for row in reader:
                if None in row:
                    row.pop(None)
                    row["__error__"] = f"more cells than the {len(reader.fieldnames or [])} columns"
                yield row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ImportFailed(f"{path.name} line {reader.line_num}: {exc}") from None


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield {
                    "__error__": f"not valid JSON: {exc}",
                    "__raw__": line.decode("utf-8", "replace"),
                }
                continue
            yield value if isinstance(value, dict) else {"__error__": "line is not a JSON object"}


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ImportFailed(f"{path.name}: not a readable Parquet file ({exc})") from None
    for batch in reader.iter_batches(batch_size=BATCH):
        for row in batch.to_pylist():
            yield {k: _plain(v) for k, v in row.items()}


def _plain(value: Any) -> Any:
    # Parquet timestamps come as datetimes, decimals as Decimal: the models want text/floats
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if type(value).__name__ == "Decimal":
        return float(value)
    return value


def columns_of(path: Path) -> list[str] | None:
    """The column names a file declares up front (CSV header, Parquet schema), if any."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFailed(f"{path.name}: not a readable Parquet file ({exc})") from None
    return None


def check_mapping(path: Path, mapping: RowMapping) -> None:
    """Fail before anything is written when a mapped column is not in the file."""
    columns = columns_of(path)
    if columns is None:
        return
    missing = [f"{k}={v}" for k, v in mapping.columns.items() if v not in columns]
    if missing:
        raise ImportFailed(
            f"{path.name} has no column for {', '.join(missing)} (columns: {', '.join(columns)})"
        )


def event_id_for(content: bytes, occurrence: int) -> str:
    """A stable id for a row without one: its content and its count among identical rows."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{content.decode()}#{occurrence}"))


def import_file(
    engine: Engine,
    path: Path,
    mapping: RowMapping,
    *,
    rejects: BinaryIO,
    now: datetime,
    max_future_s: float,
    on_row: Callable[[int], None] | None = None,
) -> Summary:
    """Import ``path`` into the store in one transaction; write rejected rows to ``rejects``."""
    check_mapping(path, mapping)
    summary = Summary()
    seen_ids: dict[str, int] = {}
    identical: Counter[bytes] = Counter()
    batch: list[dict[str, Any]] = []
    source = f"import:{path.name}"
    with engine.begin() as conn:
        writer = _writer(conn)
        for number, row in enumerate(read_rows(path), start=1):
            summary.rows += 1
            try:
                event = _event_of(row, mapping, identical, now, max_future_s)
                first = seen_ids.setdefault(event.event_id, number)
                if first != number:
                    raise InvalidEvent(f"duplicate event_id {event.event_id!r}: row {first} has it")
            except InvalidEvent as exc:
                _reject(rejects, summary, number, str(exc), row)
            else:
                batch.append(_row(event, f"{source}:{number}", now))
            if len(batch) >= BATCH:
                _flush(writer, batch, summary)
            if on_row is not None and number % 1000 == 0:
                on_row(1000)
        _flush(writer, batch, summary)
        if on_row is not None:
            on_row(summary.rows % 1000)
    return summary


def _event_of(
    row: Mapping[str, Any],
    mapping: RowMapping,
    identical: Counter[bytes],
    now: datetime,
    max_future_s: float,
) -> Any:
    if "__error__" in row:
        raise InvalidEvent(row["__error__"])
    fields = mapping.event(row)
    kind = fields.get("type")
    if kind is None:
        raise InvalidEvent("missing field 'type' (map a column to it, or give --type)")
    topic = (mapping.topic or TOPIC_OF_TYPE.get(kind)) if isinstance(kind, str) else None
    if topic is None:
        raise InvalidEvent(f"unknown type {kind!r}")
    if "event_id" not in fields:
        content = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS, default=str)
        fields["event_id"] = event_id_for(content, identical[content])
        identical[content] += 1
    event = parse_object(topic, fields)
    ahead = (event.ts - now).total_seconds()
    if ahead > max_future_s:
        raise InvalidEvent(f"ts: {event.ts.isoformat()} is {ahead / 3600:.1f} h in the future")
    return event


def _reject(rejects: BinaryIO, summary: Summary, number: int, error: str, row: Any) -> None:
    summary.rejected += 1
    summary.reasons[error.split(":")[0]] += 1
    raw = {k: v for k, v in row.items() if k != "__error__"}
    rejects.write(orjson.dumps({"row": number, "error": error, "raw": raw}, default=str) + b"\n")


def _row(event: Any, source: str, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "topic": TOPIC_OF_TYPE[event.type],
        "type": event.type,
        "ts": event.ts,
        "payload": payload_of(event),
        "source": source,
        "stored_at": now,
    }


def _flush(writer: Callable[[list[dict[str, Any]]], int], batch: list, summary: Summary) -> None:
    if batch:
        stored = writer(batch)
        summary.stored += stored
        summary.already_stored += len(batch) - stored
        batch.clear()


def _writer(conn: Connection) -> Callable[[list[dict[str, Any]]], int]:
    """Batch insert that skips stored ids; returns how many rows were new."""
    if conn.dialect.name != "postgresql":
        return lambda rows: len(store.append_events(conn, rows))
    conn.execute(
        sa.text("CREATE TEMP TABLE import_events (LIKE events INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    names = [c.name for c in store.events.columns if c.name != "seq"]

    def copy_then_insert(rows: list[dict[str, Any]]) -> int:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY import_events ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [orjson.dumps(row[n]).decode() if n == "payload" else row[n] for n in names]
                )
        cols = ", ".join(names)
        inserted = conn.execute(
            sa.text(
                f"INSERT INTO events ({cols}) SELECT {cols} FROM import_events "
                "ON CONFLICT (event_id) DO NOTHING"
            )
        ).rowcount
        conn.execute(sa.text("TRUNCATE import_events"))
        return inserted

    return copy_then_insert
