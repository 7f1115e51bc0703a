"""The event store: the source of truth (SQLAlchemy 2 Core, SQLite or PostgreSQL).

``events`` is append-only and idempotent on ``event_id``; its ``seq`` is the
store position, in the order the worker folded the events; ``customer_state``
holds the folded state of every customer; ``customer_changes`` every lifecycle
stage and value tier move; ``alerts`` every churn alert.
A worker writes all three for one batch in a single transaction, so a crash
leaves either the whole batch or none of it (docs/architecture.md, "The store decides").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

# re-exported: the store reads and writes aware UTC times
from churnwatch.times import aware as aware
from churnwatch.times import utcnow as utcnow

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

#: Store position: increases with every stored event, in the order of folding.
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False, unique=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("topic", sa.String(40), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("payload", JSONType, nullable=False),
    # where the event came from, e.g. "purchases/2/1734"; tells a redelivery
    # (same place) from a second event that reuses an id (another place)
    sa.Column("source", sa.String(300), nullable=True),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
)

customer_state = sa.Table(
    "customer_state",
    metadata,
    sa.Column("customer_id", sa.String(200), primary_key=True),
    sa.Column("partition", sa.Integer, nullable=False, index=True),
    sa.Column("state", JSONType, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # copies of the state's conclusions, for dashboards and outside readers
    sa.Column("lifecycle_stage", sa.String(16), nullable=True),
    sa.Column("value_tier", sa.String(16), nullable=True),
    #: the churn score of the customer's latest assessment, and its event time
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
    #: bumped by every save: a writer saves only over the version it read (fencing)
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # what an assignment needs of a customer, so that it need not read the state:
    # its newest event time, its next wake-up and its tier inputs (engine/lanes.py);
    # NULL in rows saved before these columns existed
    sa.Column("last_event_s", sa.Float, nullable=True),
    sa.Column("next_due_s", sa.Float, nullable=True),
    sa.Column("last_purchase_s", sa.Float, nullable=True),
    sa.Column("frequency_365d", sa.Integer, nullable=True),
    sa.Column("monetary_365d", sa.Float, nullable=True),
)

#: the columns of ``customer_state`` that :func:`stream_standings` reads
STANDING_COLUMNS = (
    "last_event_s",
    "next_due_s",
    "last_purchase_s",
    "frequency_365d",
    "monetary_365d",
)

lane_rankings = sa.Table(
    "lane_rankings",
    metadata,
    #: the input partition whose lane ranked its customers' tiers
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    #: the day of event time (days since the epoch) the ranks were taken on
    sa.Column("day", sa.Integer, nullable=False),
    #: the R, F and M snapshots, each ``[bins, members in each]``
    sa.Column("snapshots", JSONType, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

customer_changes = sa.Table(
    "customer_changes",
    metadata,
    sa.Column("change_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("from_value", sa.String(32), nullable=True),
    sa.Column("to_value", sa.String(32), nullable=False),
    sa.Column("cause", sa.String(300), nullable=False),
    sa.Column("segments", JSONType, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    #: set once the record is on ``customer-changes``
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    #: the case the alert opened or escalated (alerts/policy.py)
    sa.Column("case_id", sa.String(64), nullable=True, index=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("risk_level", sa.String(16), nullable=False),
    sa.Column("value_tier", sa.String(16), nullable=False),
    #: region, industry, channel and segment (features/segments.py)
    sa.Column("segments", JSONType, nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("reason_codes", JSONType, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("lifecycle_stage", sa.String(16), nullable=True),
    sa.Column("trigger", sa.String(300), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    #: set from the live alerts page: someone on the team has seen the alert
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    #: set once the record is on ``churn-alerts``; the outbox sends the rest
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    #: what the customer is worth and what their churn puts at risk (models/value.py)
    sa.Column("p_alive", sa.Float, nullable=True),
    sa.Column("expected_purchases", sa.Float, nullable=True),
    sa.Column("clv", sa.Float, nullable=True),
    sa.Column("clv_horizon_days", sa.Float, nullable=True),
    sa.Column("value_at_risk", sa.Float, nullable=True, index=True),
)

winback_tasks = sa.Table(
    "winback_tasks",
    metadata,
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("alert_id", sa.String(64), nullable=False, index=True),
    sa.Column("case_id", sa.String(64), nullable=True, index=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("action", sa.String(300), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
    sa.Column("owner_queue", sa.String(100), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("value_tier", sa.String(16), nullable=False),
    sa.Column("segments", JSONType, nullable=True),
    sa.Column("risk_level", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    #: set once the record is on ``winback-tasks``
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)


#: who on the retention team works a case (set from the worklist; the case keeps it)
case_owners = sa.Table(
    "case_owners",
    metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("assigned_by", sa.String(200), nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
)


winback_outcomes = sa.Table(
    "winback_outcomes",
    metadata,
    sa.Column("outcome_id", sa.String(64), primary_key=True),
    sa.Column("task_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


models = sa.Table(
    "models",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("card", JSONType, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # the current model is the one promoted last
    sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
    #: hex SHA-256 of the artifact file, recorded at training; the worker checks it
    sa.Column("sha256", sa.String(64), nullable=True),
)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, **options: Any) -> Engine:
    """Create an engine; for a SQLite file, create its folder and enable WAL.

    ``options`` go to :func:`sqlalchemy.create_engine` (pool sizes, say).
    """
    url_obj = sa.make_url(url)
    if url_obj.get_backend_name() == "sqlite":
        if url_obj.database and url_obj.database != ":memory:":
            Path(url_obj.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url_obj, json_serializer=_json_dumps, json_deserializer=orjson.loads, **options
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    return sa.create_engine(
        url_obj,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
        **options,
    )


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _insert(conn: Connection, table: sa.Table) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def append_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert event rows, skipping ids already stored; return the ids that were new."""
    if not rows:
        return set()
    stmt = _insert(conn, events).on_conflict_do_nothing(index_elements=["event_id"])
    result = conn.execute(stmt.returning(events.c.event_id), list(rows))
    return {row[0] for row in result}


def sources_of(conn: Connection, event_ids: Iterable[str]) -> dict[str, str | None]:
    """Where each of these stored events came from."""
    ids = list(event_ids)
    if not ids:
        return {}
    query = sa.select(events.c.event_id, events.c.source).where(events.c.event_id.in_(ids))
    return {key: value for key, value in conn.execute(query)}


class StaleState(Exception):
    """Another writer saved a customer's state after this writer read it."""


def save_states(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Save customer state rows (``customer_id``, ``partition``, ``state``, …); new versions.

    A row's ``version`` is the stored version its writer read (``None``: it
    read none, the customer is new). The save is a compare-and-set: when the
    stored version differs, another writer (a partition's new owner) got there
    first and :class:`StaleState` is raised, so the caller rolls back rather
    than overwrite newer state. A row without a ``version`` key is written
    unconditionally (tools that own the whole store).
    """
    if not rows:
        return {}
    now = utcnow()
    saved: dict[str, int] = {}
    blind = [row for row in rows if "version" not in row]
    fresh = [row for row in rows if "version" in row and row["version"] is None]
    known = [row for row in rows if row.get("version") is not None]
    values = (
        "partition",
        "state",
        "lifecycle_stage",
        "value_tier",
        "score",
        "scored_at",
        *STANDING_COLUMNS,
    )
    if blind:
        stmt = _insert(conn, customer_state)
        stmt = stmt.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                **{name: stmt.excluded[name] for name in (*values, "updated_at")},
                "version": customer_state.c.version + 1,
            },
        )
        result = conn.execute(
            stmt.returning(customer_state.c.customer_id, customer_state.c.version),
            [{**row, "updated_at": now} for row in blind],
        )
        saved.update({cid: version for cid, version in result})
    if fresh:
        stmt = _insert(conn, customer_state).on_conflict_do_nothing(index_elements=["customer_id"])
        result = conn.execute(
            stmt.returning(customer_state.c.customer_id),
            [{**row, "updated_at": now, "version": 1} for row in fresh],
        )
        inserted = {cid for (cid,) in result}
        if len(inserted) != len(fresh):
            taken = sorted({row["customer_id"] for row in fresh} - inserted)
            raise StaleState(f"customers stored by another writer meanwhile: {taken[:5]}")
        saved.update(dict.fromkeys(inserted, 1))
    if known:
        stmt = (
            sa.update(customer_state)
            .where(
                customer_state.c.customer_id == sa.bindparam("b_id"),
                customer_state.c.version == sa.bindparam("b_version"),
            )
            .values(
                {
                    **{name: sa.bindparam(f"b_{name}") for name in (*values, "updated_at")},
                    "version": customer_state.c.version + 1,
                }
            )
        )
        params = [
            {
                "b_id": row["customer_id"],
                "b_version": row["version"],
                "b_updated_at": now,
                **{f"b_{name}": row.get(name) for name in values},
            }
            for row in known
        ]
        done = conn.execute(stmt, params)
        if done.rowcount != len(known):
            raise StaleState(
                f"{len(known) - done.rowcount} of {len(known)} customer states were "
                "saved by another writer since this one read them"
            )
        saved.update({row["customer_id"]: row["version"] + 1 for row in known})
    return saved


def load_states(
    conn: Connection,
    partitions: Iterable[int] | None = None,
    *,
    customer_ids: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Stored state per customer: of some partitions, of some customers, or of all."""
    return {
        cid: state
        for cid, (state, _) in load_versioned_states(
            conn, partitions, customer_ids=customer_ids
        ).items()
    }


def load_versioned_states(
    conn: Connection,
    partitions: Iterable[int] | None = None,
    *,
    customer_ids: Iterable[str] | None = None,
) -> dict[str, tuple[Any, int]]:
    """``(state, version)`` per customer, selected as :func:`load_states` does."""
    table = customer_state
    query = sa.select(table.c.customer_id, table.c.state, table.c.version)
    if partitions is not None:
        query = query.where(table.c.partition.in_(list(partitions)))
    if customer_ids is None:
        return {key: (state, version) for key, state, version in conn.execute(query)}
    # a batch may wake many silent customers: stay under the databases' bound limits
    ids, found = list(customer_ids), {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = query.where(table.c.customer_id.in_(ids[start : start + _IDS_PER_QUERY]))
        found.update({key: (state, version) for key, state, version in conn.execute(chunk)})
    return found


#: most customer ids one ``IN`` list carries (SQLite allows 32,766 bound values)
_IDS_PER_QUERY = 10_000


def stream_standings(conn: Connection, partitions: Iterable[int] | None = None) -> Iterator[Any]:
    """What an assignment needs of each customer of ``partitions`` (default: all), streamed.

    Rows of ``customer_id`` and the :data:`STANDING_COLUMNS`; ``state`` is the
    stored state only for a row saved before those columns existed (its
    ``last_event_s`` is NULL), else ``None``. Streamed (a server-side cursor
    on PostgreSQL), so that a large partition is never held in memory at once.
    """
    table = customer_state
    old = table.c.last_event_s.is_(None)
    query = sa.select(
        table.c.customer_id,
        *(table.c[name] for name in STANDING_COLUMNS),
        sa.case((old, table.c.state), else_=sa.null()).label("state"),
    )
    if partitions is not None:
        query = query.where(table.c.partition.in_(list(partitions)))
    yield from conn.execution_options(yield_per=10_000).execute(query)


def save_rankings(conn: Connection, rankings: Mapping[int, tuple[int, Any]]) -> None:
    """Save each partition's ``(day, snapshots)``: the ranks its lane reads tiers against."""
    if not rankings:
        return
    now = utcnow()
    stmt = _insert(conn, lane_rankings)
    stmt = stmt.on_conflict_do_update(
        index_elements=["partition"],
        set_={name: stmt.excluded[name] for name in ("day", "snapshots", "updated_at")},
    )
    conn.execute(
        stmt,
        [
            {"partition": p, "day": day, "snapshots": snapshots, "updated_at": now}
            for p, (day, snapshots) in sorted(rankings.items())
        ],
    )


def load_rankings(
    conn: Connection, partitions: Iterable[int] | None = None
) -> dict[int, tuple[int, Any]]:
    """The saved ``(day, snapshots)`` of each partition (default: all) that has some."""
    table = lane_rankings
    query = sa.select(table.c.partition, table.c.day, table.c.snapshots)
    if partitions is not None:
        query = query.where(table.c.partition.in_(list(partitions)))
    return {p: (day, snapshots) for p, day, snapshots in conn.execute(query)}


def _add_once(
    conn: Connection, table: sa.Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> set[str]:
    """Insert rows stamped ``created_at``, skipping keys already present; return new keys."""
    if not rows:
        return set()
    now = utcnow()
    stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=[key])
    result = conn.execute(
        stmt.returning(table.c[key]), [{**row, "created_at": now} for row in rows]
    )
    return {row[0] for row in result}


def add_alerts(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert alerts, ignoring ids already present; return the ids that were new."""
    return _add_once(conn, alerts, "alert_id", rows)


def add_tasks(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert win-back tasks (``ts``, ``due_by`` as ISO text), once per ``task_id``."""
    parsed = [
        {
            **row,
            "ts": datetime.fromisoformat(row["ts"]),
            "due_by": datetime.fromisoformat(row["due_by"]),
        }
        for row in rows
    ]
    return _add_once(conn, winback_tasks, "task_id", parsed)


def end_alerts(conn: Connection, endings: Sequence[Mapping[str, Any]]) -> None:
    """Give ended alerts, and their tasks, their final status and time.

    Each ending is ``{"alert_id", "status", "ts"}``; an alert already ended
    keeps its first ending, so a replayed batch changes nothing.
    """
    if not endings:
        return
    params = [
        {"b_id": e["alert_id"], "b_status": e["status"], "b_at": datetime.fromisoformat(e["ts"])}
        for e in endings
    ]
    for table in (alerts, winback_tasks):
        conn.execute(
            sa.update(table)
            .where(table.c.alert_id == sa.bindparam("b_id"), table.c.ended_at.is_(None))
            .values(
                # an alert the CRM worked on that runs out without a purchase is lost
                status=sa.case(
                    (
                        sa.and_(
                            table.c.status == "in_progress",
                            sa.bindparam("b_status") == "expired",
                        ),
                        "lost",
                    ),
                    else_=sa.bindparam("b_status"),
                ),
                ended_at=sa.bindparam("b_at"),
            ),
            params,
        )


def add_outcomes(conn: Connection, outcomes: Sequence[Any]) -> tuple[list[Any], set[str]]:
    """Record CRM outcomes (:class:`churnwatch.winback.outcomes.Outcome`) and move tasks along.

    Returns the outcomes that were new, and the task ids no task has (which
    are not recorded). A new outcome sets its task's and alert's status unless
    they have ended; a ``lost`` one ends them.
    """
    from churnwatch.winback.outcomes import STATUS_OF_OUTCOME

    ids = {o.task_id for o in outcomes}
    found = conn.execute(
        sa.select(winback_tasks.c.task_id, winback_tasks.c.alert_id).where(
            winback_tasks.c.task_id.in_(ids)
        )
    ).all()
    alert_of = {row.task_id: row.alert_id for row in found}
    known = [o for o in outcomes if o.task_id in alert_of]
    rows = [
        {
            "outcome_id": o.outcome_id,
            "task_id": o.task_id,
            "status": o.status,
            "ts": o.ts,
            "note": o.note,
        }
        for o in known
    ]
    new_ids = _add_once(conn, winback_outcomes, "outcome_id", rows)
    new = sorted((o for o in known if o.outcome_id in new_ids), key=lambda o: o.ts)
    params = []
    for outcome in new:  # in time order: the latest report sets the status
        status = STATUS_OF_OUTCOME[outcome.status]
        params.append(
            {
                "b_task": outcome.task_id,
                "b_alert": alert_of[outcome.task_id],
                "b_status": status,
                "b_ended": outcome.ts if status == "lost" else None,
            }
        )
    if params:
        for table, key, param in (
            (winback_tasks, winback_tasks.c.task_id, "b_task"),
            (alerts, alerts.c.alert_id, "b_alert"),
        ):
            conn.execute(
                sa.update(table)
                .where(key == sa.bindparam(param), table.c.ended_at.is_(None))
                .values(status=sa.bindparam("b_status"), ended_at=sa.bindparam("b_ended")),
                params,
            )
    return new, ids - alert_of.keys()


def add_changes(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert ``customer-changes`` records (``ts`` as ISO text), once per ``change_id``."""
    parsed = [{**row, "ts": datetime.fromisoformat(row["ts"])} for row in rows]
    return _add_once(conn, customer_changes, "change_id", parsed)


def _between(query: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        query = query.where(events.c.ts >= since)
    if until is not None:
        query = query.where(events.c.ts <= until)
    return query


def read_events(
    conn: Connection, *, until: datetime | None = None, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Stored event payloads in event-time order (``since <= ts <= until``), streamed.

    Ties are broken by ``event_id``, as the worker orders a batch.
    """
    query = sa.select(events.c.payload).order_by(events.c.ts, events.c.event_id)
    for (payload,) in conn.execution_options(yield_per=5000).execute(_between(query, since, until)):
        yield payload


def read_events_of(
    conn: Connection, keep: Callable[[str], bool], *, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """:func:`read_events` of the customers ``keep(customer_id)`` accepts, streamed.

    The others' payloads are skipped before they are decoded: a replay worker
    reads the store for its own lanes only.
    """
    query = sa.select(events.c.customer_id, sa.cast(events.c.payload, sa.Text)).order_by(
        events.c.ts, events.c.event_id
    )
    rows = conn.execution_options(yield_per=5000).execute(_between(query, None, until))
    for customer_id, text in rows:
        if keep(customer_id):
            yield orjson.loads(text)


def count_events(
    conn: Connection, *, until: datetime | None = None, since: datetime | None = None
) -> int:
    """How many stored events have ``since <= ts <= until``."""
    query = sa.select(sa.func.count()).select_from(events)
    return conn.execute(_between(query, since, until)).scalar_one()


def register_model(
    conn: Connection,
    version: str,
    path: str,
    card: Mapping[str, Any],
    sha256: str | None = None,
) -> None:
    """List a saved model in the registry, with its artifact's digest."""
    conn.execute(
        sa.insert(models).values(
            version=version, path=path, card=dict(card), created_at=utcnow(), sha256=sha256
        )
    )


def promote_model(conn: Connection, version: str) -> None:
    """Make ``version`` the current model."""
    done = conn.execute(
        sa.update(models).where(models.c.version == version).values(promoted_at=utcnow())
    )
    if done.rowcount != 1:
        raise LookupError(f"no model {version!r} in the registry")


def current_model(conn: Connection) -> tuple[str, str] | None:
    """``(version, path)`` of the model promoted last, or ``None``."""
    row = conn.execute(
        sa.select(models.c.version, models.c.path)
        .where(models.c.promoted_at.is_not(None))
        .order_by(models.c.promoted_at.desc())
        .limit(1)
    ).first()
    return None if row is None else (row.version, row.path)


def current_model_entry(conn: Connection) -> tuple[str, str, str | None] | None:
    """``(version, path, sha256)`` of the model promoted last, or ``None``."""
    row = conn.execute(
        sa.select(models.c.version, models.c.path, models.c.sha256)
        .where(models.c.promoted_at.is_not(None))
        .order_by(models.c.promoted_at.desc())
        .limit(1)
    ).first()
    return None if row is None else (row.version, row.path, row.sha256)


def count_rows(engine: Engine, table: sa.Table) -> int:
    """Number of rows in a store table."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
