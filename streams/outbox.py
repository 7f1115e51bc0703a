"""The outbox: alerts, win-back tasks and customer changes stored but not yet on their topics.

An alert and its task are written in the batch's SQL transaction and sent to
Kafka after it commits. A worker that dies between the two, or a send that
fails, would leave them in the store only; so each record is marked
(``published_at``) once its own delivery succeeded, and what stays unmarked is
sent again: by a worker that takes over a partition, and on a timer.
The topics are therefore at-least-once: a worker that died after sending but
before marking sends again, with the same deterministic ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import cast

from churnwatch import store
from churnwatch.alerts.config import HOLDOUT
from churnwatch.records import ChurnAlert, CustomerChange, WinbackTask
from churnwatch.store import Engine


@dataclass
class Pending:
    """Records to send, in the order they were raised."""

    alerts: list[ChurnAlert] = field(default_factory=list)
    tasks: list[WinbackTask] = field(default_factory=list)
    changes: list[CustomerChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.tasks or self.changes)


def pending(
    engine: Engine, partitions: Iterable[int], *, stored_before: datetime | None = None
) -> Pending:
    """Unsent records of the customers stored under ``partitions`` (stored before a time)."""
    parts = list(partitions)
    out = Pending()
    with engine.connect() as conn:
        unsent = partial(store.unsent, conn, partitions=parts, stored_before=stored_before)
        out.alerts.extend(cast(ChurnAlert, r) for r in unsent(ChurnAlert))
        # a held-out case's task stays in the store: nobody is to contact the customer
        tasks = unsent(WinbackTask, leave_out_action=HOLDOUT)
        out.tasks.extend(cast(WinbackTask, r) for r in tasks)
        out.changes.extend(cast(CustomerChange, r) for r in unsent(CustomerChange))
    return out


def mark_sent(
    engine: Engine,
    alert_ids: Sequence[str],
    task_ids: Sequence[str],
    change_ids: Sequence[str] = (),
) -> None:
    """Record that these alerts, tasks and changes are on their topics."""
    if not alert_ids and not task_ids and not change_ids:
        return
    with engine.begin() as conn:
        store.mark_sent(conn, alert_ids, task_ids, change_ids)
