"""Replay over the event store, without a broker: customer rows as of a time.

The same code as the worker runs: :class:`~churnwatch.customer.CustomerRecord`
folds each customer's events, lets time run to ``T``, measures the features,
ranks the tiers and scores. Day buckets end at ``T``'s time of day, so every
window is exactly DESIGN.md's ``T - N days < ts <= T``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from churnwatch.alerts.config import Policy
from churnwatch.customer import CustomerRecord
from churnwatch.events import Event
from churnwatch.features.row import FEATURE_NAMES
from churnwatch.features.state import DAY_S, CustomerState
from churnwatch.features.tier import Population
from churnwatch.models.reasons import primary_reason
from churnwatch.models.scoring import Scorer

#: DESIGN.md's columns of ``replay --as-of``; every other feature follows them.
DESIGN_COLUMNS = (
    "customer_id",
    "score",
    "risk_level",
    "value_tier",
    "lifecycle_stage",
    "reason",
    "recency_days",
    "frequency_30d",
    "frequency_90d",
    "monetary_30d",
    "monetary_90d",
    "complaints_90d",
    "open_complaints",
    "satisfaction_mean",
    "engagement_30d",
)
COLUMNS = (
    *DESIGN_COLUMNS,
    *(name for name in FEATURE_NAMES if name not in DESIGN_COLUMNS),
    "model_version",
)


def rows_as_of(
    events: Iterable[Event], as_of_s: float, scorer: Scorer, policy: Policy
) -> list[dict[str, Any]]:
    """One row per customer from ``events`` (event-time order; later ones are ignored).

    Every customer is scored by ``scorer`` in one call; ``risk_level`` uses
    ``policy``'s thresholds for the customer's value tier.
    """
    origin = as_of_s % DAY_S
    records: dict[str, CustomerRecord] = {}
    changes: list[dict[str, Any]] = []  # the stage history is not part of the rows
    for event in events:
        if event.epoch_s > as_of_s:
            continue
        record = records.get(event.customer_id)
        if record is None:
            state = CustomerState(event.customer_id, origin_s=origin)
            record = records[event.customer_id] = CustomerRecord(state)
        record.fold(event, changes)
    population = Population()
    measured = {}
    for cid, record in records.items():
        record.advance_to(as_of_s, "silence", changes)
        measured[cid] = record.measure(as_of_s)
        population.update(cid, record.rfm)
    order = sorted(records)
    values = scorer.values([measured[cid] for cid in order])
    rows = []
    for cid, value in zip(order, values, strict=True):
        features = measured[cid]
        tier = population.tier(cid)
        rows.append(
            {
                **features,
                "customer_id": cid,
                "score": value,
                "risk_level": policy.thresholds[tier].level(value),  # type: ignore[index]
                "value_tier": tier,
                "lifecycle_stage": records[cid].stage,
                "reason": primary_reason(features),
                "model_version": scorer.version,
            }
        )
    return rows


def write_csv(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Write rows with :data:`COLUMNS` (empty cells for missing values); return the count."""
    count = 0
    with Path(path).open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in COLUMNS})
            count += 1
    return count
