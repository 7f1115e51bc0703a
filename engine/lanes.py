"""One timeline per input partition, so that ownership never changes an outcome.

Each lane holds the customers of one partition of the input topics (they are
keyed by ``customer_id``, so a customer always lands in the same one): its own
value-tier population, wake-up queue and stream time. A lane is all that
decides its customers' tiers, silence and alerts, and a lane moves between
workers whole on a rebalance. So two workers raise exactly the alerts one
worker raises, and replay — which runs the same lanes over the store — raises
them too. Tiers rank a customer among the others of its partition: a uniform
hash sample of the population, large enough for percentiles once a partition
holds a few hundred buying customers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from churnwatch.alerts.config import Playbook, Policy
from churnwatch.engine.timeline import Ranking, RecordLookup, Resumable, Run, Timeline
from churnwatch.events import Event
from churnwatch.models.scoring import Scorer
from churnwatch.topics import partition_of


class Lanes:
    """The timelines of the partitions this process counts, created on first use."""

    def __init__(self, policy: Policy, playbook: Playbook, partitions: int) -> None:
        self.policy = policy
        self.playbook = playbook
        self.partitions = partitions
        self._lanes: dict[int, Timeline] = {}

    def lane_of(self, customer_id: str) -> int:
        """The partition, and so the lane, of ``customer_id``."""
        return partition_of(customer_id, self.partitions)

    def __getitem__(self, lane: int) -> Timeline:
        """The timeline of ``lane``; ``KeyError`` if it has none yet."""
        return self._lanes[lane]

    def _timeline(self, lane: int) -> Timeline:
        timeline = self._lanes.get(lane)
        if timeline is None:
            timeline = self._lanes[lane] = Timeline(self.policy, self.playbook)
        return timeline

    def tier_of(self, customer_id: str) -> str:
        """The value tier the customer's lane ranks it in now (``general`` if unknown)."""
        lane = self._lanes.get(self.lane_of(customer_id))
        return "general" if lane is None else lane.population.tier(customer_id)

    def restart(
        self, records: Iterable[Resumable], rankings: Mapping[int, Ranking] | None = None
    ) -> int:
        """Rebuild every lane from stored customers; return how many there were.

        Lanes without customers start empty. ``records`` is read once, one at
        a time: a stream of :class:`~churnwatch.engine.timeline.Standing` keeps
        only what the lanes hold. A lane with saved ``rankings`` reads its
        tiers against them; any other ranks its population as it stands.
        """
        self._lanes = {}
        count = 0
        for record in records:
            self._timeline(self.lane_of(record.customer_id)).resume(record)
            count += 1
        for lane, timeline in self._lanes.items():
            timeline.settle((rankings or {}).get(lane))
        return count

    def due_by(self, events: Iterable[Event]) -> set[str]:
        """The customers whose wake-up may fire while :meth:`run` counts ``events``.

        A lane ages its silent customers up to the newest of its events, so a
        record lookup for the run must find every one of these.
        """
        latest: dict[str, float] = {}  # per customer first: fewer lane hashes
        for event in events:
            cid = event.customer_id
            latest[cid] = max(latest.get(cid, event.epoch_s), event.epoch_s)
        newest: dict[int, float] = {}
        for cid, at in latest.items():
            lane = self.lane_of(cid)
            newest[lane] = max(newest.get(lane, at), at)
        due_ids: set[str] = set()
        for lane, until in newest.items():
            timeline = self._lanes.get(lane)
            if timeline is not None:
                due_ids |= timeline.due_by(until)
        return due_ids

    def run(
        self,
        events: Iterable[Event],
        get: RecordLookup,
        scorer: Scorer,
        *,
        until: float | None = None,
    ) -> Run:
        """Count ``events`` (in order within each lane), score all in one call, judge.

        With ``until``, silence runs to that time in every lane, also in lanes
        these events do not touch.
        """
        by_lane: dict[int, list[Event]] = {}
        for event in events:
            by_lane.setdefault(self.lane_of(event.customer_id), []).append(event)
        lanes = sorted(by_lane.keys() | (self._lanes.keys() if until is not None else set()))
        timelines = [self._timeline(lane) for lane in lanes]
        ranked_days = [timeline.ranked_day for timeline in timelines]
        runs = [
            (timeline, timeline.count(by_lane.get(lane, ()), get, until=until))
            for lane, timeline in zip(lanes, timelines, strict=True)
        ]
        rows = [step.scored_row for _, run in runs for step in run.steps if not step.is_purchase]
        started = time.perf_counter()
        values = scorer.values(rows)
        scoring_s = time.perf_counter() - started
        merged = Run(scoring_s=scoring_s)
        at = 0
        for timeline, run in runs:
            scored = sum(1 for step in run.steps if not step.is_purchase)
            timeline.judge(run, values[at : at + scored], scorer)
            at += scored
            merged.touched.update(run.touched)
            merged.steps.extend(run.steps)
            merged.values.extend(run.values)
            merged.changes.extend(run.changes)
            merged.assessment.alerts.extend(run.assessment.alerts)
            merged.assessment.tasks.extend(run.assessment.tasks)
            merged.assessment.endings.extend(run.assessment.endings)
        for lane, timeline, day in zip(lanes, timelines, ranked_days, strict=True):
            # copy the ranks only for a lane that re-ranked: most batches stay in one day
            ranking = timeline.ranking() if timeline.ranked_day != day else None
            if ranking is not None:
                merged.rankings[lane] = ranking
        return merged
