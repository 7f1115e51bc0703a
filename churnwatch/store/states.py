"""Customer state (saved by compare-and-set on its version) and the lanes' tier rankings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch.store._write import dialect_insert
from churnwatch.store.schema import STANDING_COLUMNS, customer_state, lane_rankings
from churnwatch.times import utcnow


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
        stmt = dialect_insert(conn, customer_state)
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
        stmt = dialect_insert(conn, customer_state).on_conflict_do_nothing(
            index_elements=["customer_id"]
        )
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
    stmt = dialect_insert(conn, lane_rankings)
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
