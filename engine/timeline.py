"""Customers moved through event time: the one loop the worker and replay share.

A timeline is one lane of :class:`~churnwatch.engine.lanes.Lanes`: the customers of
one input partition. Events count one at a time, in the order given. Before
an event at time ``t`` counts, every silent customer whose lifecycle stage
changes by ``t`` is aged to that moment and assessed; after it counts, its
customer is measured and tiered. Tiers read the population snapshot of the
current day of event time. :meth:`Timeline.count` leaves the assessments
unscored, so that one model call covers every lane; then
:meth:`Timeline.judge` walks them in order through the alert policy.

So what is raised depends on the order of the events alone, not on how they
were batched.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from churnwatch.alerts.config import Playbook, Policy
from churnwatch.alerts.policy import alert_id, assess, build_alert, iso
from churnwatch.engine.customer import Assessment, CustomerRecord
from churnwatch.events import Event
from churnwatch.features.segments import SegmentSource, segment_source, segments_of
from churnwatch.features.state import DAY_S, CustomerState
from churnwatch.features.tier import RFM, Population
from churnwatch.models.scoring import Scorer, explain
from churnwatch.records import CustomerChange
from churnwatch.winback.tasks import build_task

#: ``get(customer_id)``: the record of a customer this timeline owns, else ``None``
RecordLookup = Callable[[str], CustomerRecord | None]


class Resumable(Protocol):
    """What a timeline restarts from: a :class:`CustomerRecord`, or a :class:`Standing`."""

    @property
    def customer_id(self) -> str: ...

    @property
    def rfm(self) -> RFM: ...

    @property
    def last_event_s(self) -> float | None: ...

    def next_due(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Standing:
    """The little a lane needs of a customer whose record it does not hold.

    Saved with each state row (``customer_state``), so that an assignment
    rebuilds its lanes without reading, or keeping, every record.
    """

    customer_id: str
    rfm: RFM
    #: :meth:`CustomerRecord.next_due` when it was saved
    due: float | None
    last_event_s: float | None

    def next_due(self) -> float | None:
        """When time alone may next change the stage."""
        return self.due


@dataclass(frozen=True, slots=True)
class Ranking:
    """The ranks a lane reads tiers against: the day of event time it took them on.

    Saved whenever a lane re-ranks, so that a restarted lane ranks exactly as
    the one before it did for the rest of that day (its members' values have
    moved on since the snapshot was taken).
    """

    day: int
    #: :meth:`Population.ranking`
    snapshots: list[list[list[int]]]


@dataclass(slots=True)
class Step:
    """One moment of a customer's timeline: a purchase, or an assessment to score."""

    customer_id: str
    at: float
    #: the event id, or ``stage@time`` for silence; ``None`` for a purchase
    trigger: str | None = None
    tier: str = "general"
    stage: str = "prospect"
    row: dict[str, Any] | None = None
    #: the customer's segments as of the step (:mod:`churnwatch.features.segments`)
    segments: SegmentSource = (None, None)

    @property
    def is_purchase(self) -> bool:
        """A purchase only moves the alert state (won back); it is not scored."""
        return self.trigger is None

    @property
    def scored_row(self) -> dict[str, Any]:
        """The feature row of an assessment (every step but a purchase has one)."""
        if self.row is None:
            raise ValueError(f"step {self.trigger!r} of {self.customer_id} has no feature row")
        return self.row


@dataclass
class Run:
    """What one pass over some events produced."""

    #: every customer whose record changed, by id
    touched: dict[str, CustomerRecord] = field(default_factory=dict)
    #: purchases and assessments in the order they happened
    steps: list[Step] = field(default_factory=list)
    #: the score of each assessment step, in order
    values: list[float] = field(default_factory=list)
    #: ``customer-changes`` records
    changes: list[CustomerChange] = field(default_factory=list)
    assessment: Assessment = field(default_factory=Assessment)
    #: wall seconds spent in the model's one call
    scoring_s: float = 0.0
    #: lane → its new ranks, for every lane that re-ranked (:meth:`Lanes.run`)
    rankings: dict[int, Ranking] = field(default_factory=dict)


class Timeline:
    """The population, the wake-up queue of silent customers and stream time."""

    def __init__(self, policy: Policy, playbook: Playbook) -> None:
        self.policy = policy
        self.playbook = playbook
        self.population = Population()
        #: the newest event time seen; silence is measured against it
        self.stream_time: float | None = None
        self._ranked_day: int | None = None
        self._due: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}

    def resume(self, record: Resumable) -> None:
        """Add a stored customer to a new timeline: population, wake-up, stream time.

        Once every stored customer is in, :meth:`settle` takes the ranks.
        """
        self.population.update(record.customer_id, record.rfm)
        self.schedule(record)
        seen = record.last_event_s
        if seen is not None and (self.stream_time is None or seen > self.stream_time):
            self.stream_time = seen

    def settle(self, ranking: Ranking | None = None) -> None:
        """Rank the population :meth:`resume` built: as saved, else as of its stream time."""
        if ranking is not None:
            self.population.restore_ranking(ranking.snapshots)
            self._ranked_day = ranking.day
            return
        self.population.rerank()
        newest = self.stream_time
        self._ranked_day = None if newest is None else int(newest // DAY_S)

    @property
    def ranked_day(self) -> int | None:
        """The day of event time the tiers were last ranked on."""
        return self._ranked_day

    def ranking(self) -> Ranking | None:
        """The ranks tiers are read against now, to save; ``None`` before the first."""
        if self._ranked_day is None:
            return None
        return Ranking(self._ranked_day, self.population.ranking())

    def due_by(self, until: float) -> set[str]:
        """The customers whose wake-up is due by ``until``: a count to ``until`` reads them.

        Walks only the part of the heap due by then (a parent is never due
        after its children).
        """
        due_ids: set[str] = set()
        heap, todo = self._due, [0] if self._due else []
        while todo:
            i = todo.pop()
            due, cid = heap[i]
            if due > until:
                continue
            if self._scheduled.get(cid) == due:
                due_ids.add(cid)
            todo.extend(child for child in (2 * i + 1, 2 * i + 2) if child < len(heap))
        return due_ids

    def schedule(self, record: Resumable) -> None:
        """Queue the time at which silence alone next changes ``record``'s stage."""
        due = record.next_due()
        if due is None:
            return
        current = self._scheduled.get(record.customer_id)
        if current is not None and current <= due:
            return  # the earlier wake-up re-checks and reschedules
        self._scheduled[record.customer_id] = due
        heapq.heappush(self._due, (due, record.customer_id))

    def count(
        self,
        events: Iterable[Event],
        get: RecordLookup,
        *,
        until: float | None = None,
    ) -> Run:
        """Count ``events`` in order, then let silence run to ``until`` (if given).

        The run's assessments are not scored yet: :meth:`judge` does that once
        their values are known, so that one model call can serve many runs.
        """
        run = Run()
        for event in events:
            at = event.epoch_s
            self._wake(at, get, run)
            cid = event.customer_id
            record = run.touched.get(cid) or get(cid) or CustomerRecord(CustomerState(cid))
            run.touched[cid] = record
            self._tick(at)
            record.fold(event, run.changes)
            if event.type == "purchase":
                run.steps.append(Step(cid, at))
            # scored as of the customer's newest event, which a late one is not
            self._assess(record, event.event_id, record.features.last_event_s, run)  # type: ignore[arg-type]
            if self.stream_time is None or at > self.stream_time:
                self.stream_time = at
        if until is not None:
            self._wake(until, get, run)
        return run

    def _tick(self, at: float) -> None:
        """Re-rank the population once per new day of event time."""
        day = int(at // DAY_S)
        if self._ranked_day is None or day > self._ranked_day:
            self.population.rerank()
            self._ranked_day = day

    def _wake(self, until: float, get: RecordLookup, run: Run) -> None:
        """Age every customer whose stage changes by ``until``, one change at a time."""
        while self._due and self._due[0][0] <= until:
            due, cid = heapq.heappop(self._due)
            if self._scheduled.get(cid) != due:
                continue  # superseded by a later event
            del self._scheduled[cid]
            record = run.touched.get(cid) or get(cid)
            if record is None:
                continue  # no longer ours
            own = record.next_due()
            if own is None or due < own:
                # Queued before an event moved the wake-up on. A restarted lane
                # queues only the record's own (its stored ``next_due_s``), so
                # this one must change nothing: no tick, no stage time, no save.
                self.schedule(record)
                continue
            run.touched[cid] = record
            self._tick(due)
            changed_at = record.advance_to(due, "silence", run.changes)
            if changed_at is None:
                self.schedule(record)
            else:
                self._assess(record, f"{record.stage}@{iso(changed_at)}", changed_at, run)

    def _assess(self, record: CustomerRecord, trigger: str, at: float, run: Run) -> None:
        row = record.measure(at)
        self.population.update(record.customer_id, record.rfm)
        record.retier(self.population, trigger, at, run.changes)
        step = Step(
            record.customer_id,
            at,
            trigger,
            record.value_tier,
            record.stage,
            row,
            segment_source(record.features),
        )
        run.steps.append(step)
        self.schedule(record)

    def judge(self, run: Run, values: list[float], scorer: Scorer) -> None:
        """Walk the steps in order through the alert policy with the assessments' ``values``.

        ``scorer`` explains what was raised.
        """
        run.values = values
        out = run.assessment
        values_left = iter(values)
        raised: list[tuple[Step, str, float, str]] = []
        # segments decide thresholds only when the policy has segment rules
        by_segment = bool(self.policy.segment_thresholds)
        for step in run.steps:
            alerts = run.touched[step.customer_id].alerts
            if step.is_purchase:
                alerts.note_purchase(step.at)
                continue
            value = next(values_left)
            record = run.touched[step.customer_id]
            record.score, record.scored_at = value, step.at
            level, endings = assess(
                alerts,
                self.policy,
                tier=step.tier,
                score=value,
                at=step.at,
                prospect=step.stage == "prospect",
                name=partial(alert_id, step.customer_id, trigger=step.trigger or ""),
                segments=segments_of(step.segments) if by_segment else None,
            )
            for ending in endings:
                out.end(ending)
            if level is not None:
                raised.append((step, level, value, alerts.case_id))  # type: ignore[arg-type]
        scores = explain(scorer, [r[0].row for r in raised], [r[2] for r in raised])  # type: ignore[misc]
        for (step, level, _, case_id), score in zip(raised, scores, strict=True):
            alert = build_alert(
                step.customer_id,
                step.trigger,  # type: ignore[arg-type]
                datetime.fromtimestamp(step.at, tz=UTC),
                level,
                score,
                step.tier,
                step.stage,
                case_id,
                segments_of(step.segments),
            )
            out.alerts.append(alert)
            out.tasks.append(build_task(alert, self.playbook))
