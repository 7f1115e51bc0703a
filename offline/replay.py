"""Replay over the event store, without a broker.

Two uses, both on the code the worker runs:

- :func:`replay_history` sends stored events, in event-time order, through the
  worker's :class:`~churnwatch.engine.lanes.Lanes`: the alerts that would have
  fired, plus a compact :class:`Trace` of every purchase and scored assessment
  from which the backtest re-runs the alert policy under other thresholds;
- :func:`rows_as_of` gives every customer's row as of a time ``T``. Day buckets
  end at ``T``'s time of day, so every window is exactly docs/contract.md's
  ``T - N days < ts <= T``.

Both need the worker's partition count: a value tier ranks a customer among
the others of its partition, as the worker does.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnwatch.alerts.config import DEFAULT_PLAYBOOK, Playbook, Policy, load_playbook
from churnwatch.engine.customer import CustomerRecord
from churnwatch.engine.lanes import Lanes
from churnwatch.engine.timeline import Run
from churnwatch.events import Event
from churnwatch.features.row import FEATURE_NAMES
from churnwatch.features.segments import segment_source, segments_of
from churnwatch.features.state import DAY_S, CustomerState
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import primary_reason
from churnwatch.models.scoring import Scorer
from churnwatch.models.value import VALUE_FIELDS, customer_values
from churnwatch.records import ChurnAlert, CustomerChange, WinbackTask

#: the first columns of ``replay --as-of`` (docs/contract.md); every other feature follows.
CONTRACT_COLUMNS = (
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
    *CONTRACT_COLUMNS,
    *VALUE_FIELDS,
    *(name for name in FEATURE_NAMES if name not in CONTRACT_COLUMNS),
    "model_version",
)


def rows_as_of(
    events: Iterable[Event], as_of_s: float, scorer: Scorer, policy: Policy, *, partitions: int
) -> list[dict[str, Any]]:
    """One row per customer from ``events`` (event-time order; later ones are ignored).

    Every customer is scored by ``scorer`` in one call; ``risk_level`` uses
    ``policy``'s thresholds for the customer's value tier, ranked within its
    one of ``partitions``.
    """
    origin = as_of_s % DAY_S
    records: dict[str, CustomerRecord] = {}
    changes: list[CustomerChange] = []  # the stage history is not part of the rows
    for event in events:
        if event.epoch_s > as_of_s:
            continue
        record = records.get(event.customer_id)
        if record is None:
            state = CustomerState(event.customer_id, origin_s=origin)
            record = records[event.customer_id] = CustomerRecord(state)
        record.fold(event, changes)
    measured = {}
    for cid, record in records.items():
        record.advance_to(as_of_s, "silence", changes)
        measured[cid] = record.measure(as_of_s)
    # tiers as a worker holding these records ranks them: the recovery path
    lanes = Lanes(policy, load_playbook(DEFAULT_PLAYBOOK), partitions)
    lanes.restart(records.values())
    order = sorted(records)
    values = scorer.values([measured[cid] for cid in order])
    worth = customer_values([measured[cid] for cid in order], values, getattr(scorer, "clv", None))
    rows = []
    for cid, value, value_fields in zip(order, values, worth, strict=True):
        features = measured[cid]
        tier = lanes.tier_of(cid)
        rows.append(
            {
                **features,
                **value_fields,
                "customer_id": cid,
                "score": value,
                "risk_level": policy.thresholds_for(
                    tier, segments_of(segment_source(records[cid].features))
                ).level(value),
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


#: kinds of :class:`Trace` steps
PURCHASE, ASSESS, ASSESS_PROSPECT = 0, 1, 2


@dataclass
class Trace:
    """Every purchase and assessment of a replay, in order, in compact columns.

    Enough to re-run the alert policy (``settle``/``decide``/``opened``) under
    other thresholds without folding or scoring again.
    """

    customers: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    customer: array = field(default_factory=lambda: array("i"))
    at: array = field(default_factory=lambda: array("d"))
    kind: array = field(default_factory=lambda: array("b"))
    #: position in :data:`~churnwatch.features.tier.TIERS`
    tier: array = field(default_factory=lambda: array("b"))
    value: array = field(default_factory=lambda: array("d"))
    #: position in :attr:`segment_sets` of the step's segments (the policy may set
    #: thresholds per segment)
    segment: array = field(default_factory=lambda: array("i"))
    segment_sets: list[dict[str, str | None]] = field(default_factory=list)
    _segment_index: dict[tuple[str | None, ...], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.at)

    def segment_set(self, segments: dict[str, str | None]) -> int:
        """The position of ``segments`` in :attr:`segment_sets`, added if new."""
        key = tuple(segments.values())
        index = self._segment_index.get(key)
        if index is None:
            index = self._segment_index[key] = len(self.segment_sets)
            self.segment_sets.append(segments)
        return index

    def extend(self, run: Run) -> None:
        """Append a run's steps with their scores."""
        values = iter(run.values)
        tier_of = {name: i for i, name in enumerate(TIERS)}
        for step in run.steps:
            cid = self.index.get(step.customer_id)
            if cid is None:
                cid = self.index[step.customer_id] = len(self.customers)
                self.customers.append(step.customer_id)
            self.customer.append(cid)
            self.at.append(step.at)
            self.tier.append(tier_of[step.tier])
            self.segment.append(self.segment_set(segments_of(step.segments)))
            if step.is_purchase:
                self.kind.append(PURCHASE)
                self.value.append(0.0)
            else:
                self.kind.append(ASSESS_PROSPECT if step.stage == "prospect" else ASSESS)
                self.value.append(next(values))


@dataclass
class Replayed:
    """What a replay of the store produced."""

    alerts: list[ChurnAlert] = field(default_factory=list)
    tasks: list[WinbackTask] = field(default_factory=list)
    #: lifecycle stage and value tier moves
    changes: list[CustomerChange] = field(default_factory=list)
    trace: Trace = field(default_factory=Trace)
    #: customer → [(time, signed amount)] of every purchase and refund, also after ``until``
    purchases: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    #: currency code → purchases and refunds that carry it (the backtest's money is in these)
    currencies: dict[str, int] = field(default_factory=dict)
    #: events sent through the timeline
    replayed: int = 0
    first_s: float | None = None
    last_s: float | None = None


def replay_history(
    events: Iterable[Event],
    scorer: Scorer,
    policy: Policy,
    playbook: Playbook,
    *,
    partitions: int,
    until: float | None = None,
    chunk: int = 20_000,
    on_event: Callable[[int], None] | None = None,
) -> Replayed:
    """Send ``events`` (event-time order) with ``ts <= until`` through the worker's lanes.

    Events come in chunks of ``chunk``, each scored in one call, so a replay
    holds one chunk and the compact trace, never the whole history.
    Purchases after ``until`` are only noted: they say who came back.
    ``on_event(n)`` reports progress every chunk.
    """
    out = Replayed()
    lanes = Lanes(policy, playbook, partitions)
    records: dict[str, CustomerRecord] = {}
    pending: list[Event] = []

    def keep(run: Run) -> None:
        out.alerts.extend(run.assessment.alerts)
        out.tasks.extend(run.assessment.tasks)
        out.changes.extend(run.changes)
        out.trace.extend(run)

    def flush() -> None:
        run = lanes.run(pending, records.get, scorer)
        records.update(run.touched)
        keep(run)
        out.replayed += len(pending)
        if on_event is not None:
            on_event(len(pending))
        pending.clear()

    for event in _noting_purchases(events, out):
        if until is not None and event.epoch_s > until:
            continue
        pending.append(event)
        if len(pending) >= chunk:
            flush()
    flush()
    if until is not None:
        keep(lanes.run([], records.get, scorer, until=until))
    return out


def _noting_purchases(events: Iterable[Event], out: Replayed) -> Iterator[Event]:
    for event in events:
        at = event.epoch_s
        if out.first_s is None:
            out.first_s = at
        out.last_s = at
        if event.type in ("purchase", "refund"):
            sign = 1.0 if event.type == "purchase" else -1.0
            out.purchases.setdefault(event.customer_id, []).append((at, sign * event.amount))  # type: ignore[attr-defined]
            code = event.currency  # type: ignore[attr-defined]
            out.currencies[code] = out.currencies.get(code, 0) + 1
        yield event
