"""``churnwatch import FILE``: historic events from CSV, JSONL or Parquet into the store.

Each row is mapped to an event (column mapping, constant fields, a default
``type``, a date format), validated by the same models as the live topics, and
either stored or written, with its reason, to the rejects file. A row without
an ``event_id`` gets one derived from its content (and how many identical rows
came before it), so importing the same file again adds nothing.

The whole file goes in one transaction: a file that cannot be read to the end
leaves the store as it was. Rows go in batches; on PostgreSQL through ``COPY``
into a temporary table, then one ``INSERT … ON CONFLICT DO NOTHING``.

Records far outside the bulk of the file's history are reported: the bulk is
the dense part of the valid rows' event times, as ``churnwatch train`` finds it
(:func:`~churnwatch.models.dataset.dense_window`), and a record is *far out*
when it lies more than ``far_margin`` times that part's length (and more than
:data:`MIN_FAR_DAYS`) before or after it. They are stored and counted per
reason, with the first rows as examples; ``strict`` rejects them instead, which
takes a first pass over the file to find the bulk before anything is written.
"""

from __future__ import annotations

import codecs
import csv
import re
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from churnwatch import store
from churnwatch.events import (
    TOPIC_OF_TYPE,
    Event,
    InvalidEvent,
    not_ahead,
    parse_object,
    payload_of,
)
from churnwatch.features.state import DAY_S
from churnwatch.models.dataset import dense_window
from churnwatch.offline.sniffing import NotText, TextFormat, first_bad_line, shown, sniff
from churnwatch.store import Engine

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
#: how far outside the dense part of a file's history a record is far out, as a
#: share of that part's length: a quarter (about 90 days of a year's file) would
#: stretch the training span by more than a warm-up, while a ramp-up or the odd
#: late order within weeks of the edges is ordinary history
DEFAULT_FAR_MARGIN = 0.25
#: and never nearer than this: a short file's own spread is no reason to flag
MIN_FAR_DAYS = 7.0
FAR_BEFORE = "ts far before the file's history"
FAR_AFTER = "ts far after the file's history"
#: rows shown per reason in a summary
EXAMPLES = 3
_FIELD = re.compile(r"[A-Za-z_][\w.]*")
_JSONL = (".jsonl", ".ndjson", ".json")


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
    #: the text encoding of a CSV or JSONL file (``None``: found from the file)
    encoding: str | None = None
    #: the delimiter of a CSV file (``None``: found from the file)
    delimiter: str | None = None

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The event fields of ``row`` (not yet validated); :class:`InvalidEvent` on a bad one."""
        out, problems = self.fields_of(row)
        if problems:
            raise InvalidEvent("; ".join(problems.values()))
        return out

    def fields_of(self, row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The event fields of ``row``, and a problem per field that cannot be converted.

        A field that is no number, or no date of ``date_format``, keeps its text, so
        that validation goes on to find what else is wrong with the row.
        """
        problems: dict[str, str] = {}
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
                    problems[name] = f"{name}: {out[name]!r} is not a number"
        if self.date_format and isinstance(out.get("ts"), str):
            try:
                ts = datetime.strptime(out["ts"].strip(), self.date_format)
            except ValueError:
                problems["ts"] = (
                    f"ts: {out['ts']!r} does not match --date-format {self.date_format!r}"
                )
            else:
                out["ts"] = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()
        amount = out.get("amount")
        if self.negative_as_refund and out.get("type") == "purchase" and _negative(amount):
            out["type"], out["amount"] = "refund", -amount  # type: ignore[operator]
        return out, problems


def _negative(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value < 0


def reason_of(error: str) -> str:
    """What kind of error ``error`` is, to count rows by: every field it names.

    ``"customer_id: Field required; ts: Field required"`` is ``"customer_id, ts"``;
    an error about no field is its words before any detail (``"not valid JSON"``).
    """
    kinds = []
    for part in error.split("; "):
        head, sep, _ = part.partition(": ")
        kinds.append(head if sep and _FIELD.fullmatch(head) else head.split(" (")[0])
    return ", ".join(dict.fromkeys(kinds))


def fields_in(error: str) -> list[str]:
    """Every field ``error`` is about, once each (none for an error about the row)."""
    heads = (part.partition(": ") for part in error.split("; "))
    return list(dict.fromkeys(h for h, sep, _ in heads if sep and _FIELD.fullmatch(h)))


@dataclass(frozen=True)
class Bulk:
    """Where the bulk of a file's history lies, and how far outside it a record is far out."""

    start_s: float
    end_s: float
    margin_s: float

    @classmethod
    def of(cls, times_s: Sequence[float], far_margin: float) -> Bulk | None:
        """The bulk of the event times ``times_s``; ``None`` for none."""
        if not len(times_s):
            return None
        start, end = dense_window(times_s)
        return cls(start, end, max(far_margin * (end - start), MIN_FAR_DAYS * DAY_S))

    def far_out(self, ts_s: float) -> tuple[str, str] | None:
        """The reason and the message when ``ts_s`` lies far outside the bulk, else ``None``."""
        if self.start_s - self.margin_s <= ts_s <= self.end_s + self.margin_s:
            return None
        before = ts_s < self.start_s
        days = (self.start_s - ts_s if before else ts_s - self.end_s) / DAY_S
        return (
            FAR_BEFORE if before else FAR_AFTER,
            f"ts: {_iso(ts_s)} is {days:.0f} days {'before' if before else 'after'} the "
            f"dense part of the file's history, {self.span()}",
        )

    def span(self) -> str:
        """The bulk's first and last time."""
        return f"{_iso(self.start_s)} to {_iso(self.end_s)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "from": _iso(self.start_s),
            "to": _iso(self.end_s),
            "margin_days": round(self.margin_s / DAY_S, 1),
        }


def _iso(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, tz=UTC).isoformat(timespec="seconds")


@dataclass
class Summary:
    """What an import did."""

    rows: int = 0
    stored: int = 0
    already_stored: int = 0
    rejected: int = 0
    #: rows rejected, per reason (:func:`reason_of`, or a far-out reason under ``strict``)
    reasons: Counter[str] = field(default_factory=Counter)
    #: rejected rows per field they fail on (a row counts once for each of its fields)
    fields: Counter[str] = field(default_factory=Counter)
    #: how the file was read as text (``None``: Parquet)
    text: TextFormat | None = None
    #: rows far outside the bulk of the file's history, per reason: stored and
    #: flagged, or rejected under ``strict`` (then also in ``reasons``)
    far_out: Counter[str] = field(default_factory=Counter)
    #: the first rows of each reason, rejected or far out: ``{"row", "error"}``
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: where the bulk of the file's history lies (``None``: no valid row)
    bulk: Bulk | None = None
    #: far-out rows were rejected, not stored
    strict: bool = False

    @property
    def flagged(self) -> int:
        """Far-out rows that were stored (or already were)."""
        return 0 if self.strict else self.far_out.total()

    @property
    def all_rejected(self) -> bool:
        """The file had rows, and every one was rejected: nothing of it is in the store."""
        return self.rows > 0 and self.rejected == self.rows

    def note(self, reason: str, number: int, error: str) -> None:
        """Keep row ``number`` as an example of ``reason`` while there are few."""
        examples = self.examples.setdefault(reason, [])
        if len(examples) < EXAMPLES:
            examples.append({"row": number, "error": error})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the five commonest reasons for rejection."""
        return {
            "rows": self.rows,
            "stored": self.stored,
            "already_stored": self.already_stored,
            "rejected": self.rejected,
            "top_reasons": dict(self.reasons.most_common(5)),
            "reasons": dict(self.reasons.most_common()),
            "fields": dict(self.fields.most_common()),
            "encoding": None if self.text is None else self.text.encoding,
            "delimiter": None if self.text is None else self.text.delimiter,
            "flagged": self.flagged,
            "far_out": dict(self.far_out),
            "far_out_action": "rejected" if self.strict else "stored and flagged",
            "bulk": None if self.bulk is None else self.bulk.to_dict(),
            "examples": self.examples,
        }


def read_rows(
    path: Path, encoding: str = "utf-8-sig", delimiter: str = ","
) -> Iterator[dict[str, Any]]:
    """The rows of a CSV, JSONL or Parquet file, as dicts (by file suffix)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path, encoding, delimiter)
    elif suffix in _JSONL:
        yield from _jsonl_rows(path, encoding)
    elif suffix in (".parquet", ".pq"):
        yield from _parquet_rows(path)
    else:
        raise ImportFailed(
            f"{path.name}: unknown file type {suffix!r} (use .csv, .jsonl, .parquet)"
        )


def _csv_rows(path: Path, encoding: str, delimiter: str) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding=encoding) as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            for row in reader:
                if None in row:
                    row.pop(None)
                    row["__error__"] = f"more cells than the {len(reader.fieldnames or [])} columns"
                yield row
        except UnicodeDecodeError as exc:
            raise _not_encoded(path, encoding, exc) from None
        except csv.Error as exc:
            raise ImportFailed(f"{path.name} line {reader.line_num}: {exc}") from None


def _not_encoded(path: Path, encoding: str, exc: UnicodeDecodeError) -> ImportFailed:
    # the reader decodes ahead of the rows it yields: find the line in the bytes
    line = first_bad_line(path, encoding)
    where = f"{path.name} line {line}" if line else path.name
    return ImportFailed(
        f"{where} is not {shown(encoding)} text ({exc.reason}); "
        "give the file's encoding with --encoding, e.g. --encoding cp1252"
    )


def _jsonl_rows(path: Path, encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    # JSON is UTF-8; a file in another encoding (given or found) is re-encoded per line
    utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            if not utf8:
                try:
                    line = line.decode(encoding).encode()
                except UnicodeDecodeError as exc:
                    raise _not_encoded(path, encoding, exc) from None
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


def columns_of(path: Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> list[str] | None:
    """The column names a file declares up front (CSV header, Parquet schema), if any."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding=encoding) as f:
            try:
                return next(csv.reader(f, delimiter=delimiter), [])
            except UnicodeDecodeError as exc:
                raise _not_encoded(path, encoding, exc) from None
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
    columns = columns_of(path, mapping.encoding or "utf-8-sig", mapping.delimiter or ",")
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
    far_margin: float = DEFAULT_FAR_MARGIN,
    strict: bool = False,
    on_row: Callable[[int], None] | None = None,
) -> Summary:
    """Import ``path`` into the store in one transaction; write rejected rows to ``rejects``.

    Rows far outside the bulk of the file's history are stored and flagged in the
    summary; with ``strict`` they are rejected. The encoding and the CSV delimiter
    are found from the file unless ``mapping`` gives them.
    """
    text = text_format(path, mapping)
    if text is not None:
        mapping = replace(mapping, encoding=text.encoding, delimiter=text.delimiter)
    check_mapping(path, mapping)
    summary = Summary(strict=strict, text=text)
    if strict:
        # a first pass finds the bulk, so that no far-out row is ever written
        valid = (
            e.epoch_s for _, _, e, _ in _checked(path, mapping, now, max_future_s) if e is not None
        )
        summary.bulk = Bulk.of(array("d", valid), far_margin)
    # the valid rows' numbers and times: which are far out is known after the pass
    numbers, times = array("q"), array("d")
    batch: list[dict[str, Any]] = []
    source = f"import:{path.name}"
    with engine.begin() as conn:
        writer = store.event_writer(conn)
        for number, row, event, error in _checked(path, mapping, now, max_future_s):
            summary.rows += 1
            if event is None:
                _reject(rejects, summary, number, error, row)
            elif summary.bulk and (far := summary.bulk.far_out(event.epoch_s)):  # strict
                summary.far_out[far[0]] += 1
                _reject(rejects, summary, number, far[1], row, reason=far[0])
            else:
                batch.append(_row(event, f"{source}:{number}", now))
                numbers.append(number)
                times.append(event.epoch_s)
            if len(batch) >= BATCH:
                _flush(writer, batch, summary)
            if on_row is not None and number % 1000 == 0:
                on_row(1000)
        _flush(writer, batch, summary)
        if on_row is not None:
            on_row(summary.rows % 1000)
    if not strict:
        summary.bulk = Bulk.of(times, far_margin)
        for number, ts in zip(numbers, times, strict=True):
            far = summary.bulk.far_out(ts) if summary.bulk else None
            if far is not None:
                summary.far_out[far[0]] += 1
                summary.note(far[0], number, far[1])
    return summary


def text_format(path: Path, mapping: RowMapping) -> TextFormat | None:
    """How a CSV or JSONL file is read as text (``None`` for Parquet); fail for a binary one."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", *_JSONL):
        return None
    try:
        return sniff(
            path, encoding=mapping.encoding, delimiter=mapping.delimiter, csv_file=suffix == ".csv"
        )
    except (NotText, ValueError) as exc:
        raise ImportFailed(str(exc)) from None


def _checked(
    path: Path, mapping: RowMapping, now: datetime, max_future_s: float
) -> Iterator[tuple[int, dict[str, Any], Event | None, str]]:
    """Each row of ``path``: its number, the row, and its event, or why it has none.

    The same file gives the same events on every pass (ids, duplicates).
    """
    seen_ids: dict[str, int] = {}
    identical: Counter[bytes] = Counter()
    rows = read_rows(path, mapping.encoding or "utf-8-sig", mapping.delimiter or ",")
    for number, row in enumerate(rows, start=1):
        try:
            event = _event_of(row, mapping, identical, now, max_future_s)
            first = seen_ids.setdefault(event.event_id, number)
            if first != number:
                raise InvalidEvent(f"duplicate event_id: row {first} has {event.event_id!r}")
        except InvalidEvent as exc:
            yield number, row, None, str(exc)
        else:
            yield number, row, event, ""


def _event_of(
    row: Mapping[str, Any],
    mapping: RowMapping,
    identical: Counter[bytes],
    now: datetime,
    max_future_s: float,
) -> Event:
    if "__error__" in row:
        raise InvalidEvent(row["__error__"])
    fields, problems = mapping.fields_of(row)
    try:
        event = _validated(fields, mapping, identical)
    except InvalidEvent as exc:
        if not problems:
            raise
        # the conversion's own words for its fields, the models' for every other one
        others = [p for p in str(exc).split("; ") if p.partition(": ")[0] not in problems]
        raise InvalidEvent("; ".join([*problems.values(), *others])) from None
    if problems:
        raise InvalidEvent("; ".join(problems.values()))
    return not_ahead(event, now, max_future_s)


def _validated(fields: dict[str, Any], mapping: RowMapping, identical: Counter[bytes]) -> Event:
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
    return parse_object(topic, fields)


def _reject(
    rejects: BinaryIO,
    summary: Summary,
    number: int,
    error: str,
    row: Any,
    reason: str | None = None,
) -> None:
    summary.fields.update(fields_in(error))
    reason = reason or reason_of(error)
    summary.rejected += 1
    summary.reasons[reason] += 1
    summary.note(reason, number, error)
    raw = {k: v for k, v in row.items() if k != "__error__"}
    line = {"row": number, "reason": reason, "error": error, "raw": raw}
    rejects.write(orjson.dumps(line, default=str) + b"\n")


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
