"""Alerts (each opens or escalates a case), their endings, and lifecycle and tier changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch.store._write import add_once
from churnwatch.store.schema import alerts, customer_changes, winback_tasks


def add_alerts(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert alerts, ignoring ids already present; return the ids that were new."""
    return add_once(conn, alerts, "alert_id", rows)


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


def add_changes(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert ``customer-changes`` records (``ts`` as ISO text), once per ``change_id``."""
    parsed = [{**row, "ts": datetime.fromisoformat(row["ts"])} for row in rows]
    return add_once(conn, customer_changes, "change_id", parsed)
