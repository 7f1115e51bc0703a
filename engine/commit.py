"""The batch commit: accepted events → store, customer state, alerts, tasks, changes.

Plain Python, no Faust: the stream agent hands in what its intake accepted and
publishes the :class:`Committed` result. Everything a batch changes in SQL — new
events, the state of the customers they touched, the alerts they raised — is
written in one transaction, and only events that were new to the store are
folded, so a redelivered batch changes nothing (docs/architecture.md, "The store decides").
"""

from __future__ import annotations

import threading
from collections import ChainMap, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from churnwatch import store
from churnwatch.alerts.config import Playbook, Policy, load_playbook, load_policy
from churnwatch.engine.customer import CustomerRecord
from churnwatch.engine.lanes import Lanes
from churnwatch.engine.timeline import Ranking, Resumable, Standing
from churnwatch.events import Event, payload_of
from churnwatch.features.state import is_too_late
from churnwatch.features.tier import RFM
from churnwatch.models.rule import RuleScorer
from churnwatch.models.scoring import Scorer
from churnwatch.records import (
    AlertEnding,
    ChurnAlert,
    CustomerChange,
    DeadLetter,
    RawRecord,
    WinbackTask,
)


@dataclass
class Committed:
    """What a committed batch produced, for the publisher to send."""

    #: customer_id → new state row (:meth:`CustomerRecord.row`)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[ChurnAlert] = field(default_factory=list)
    #: ``winback-tasks`` records, one per new alert
    tasks: list[WinbackTask] = field(default_factory=list)
    #: alerts (and their tasks) that ended: won back, expired, escalated
    endings: list[AlertEnding] = field(default_factory=list)
    #: ``customer-changes`` records: lifecycle stage and value tier moves
    changes: list[CustomerChange] = field(default_factory=list)
    #: duplicates and events too late for their customer's clock
    dead_letters: list[DeadLetter] = field(default_factory=list)
    stored: int = 0
    redelivered: int = 0
    #: assessments scored, and the wall seconds the model took for them
    scored: int = 0
    scoring_s: float = 0.0


class _Raced(Exception):
    """Another writer stored one of this batch's event ids first: redo the batch."""


class Committer:
    """Stores and folds batches of accepted events.

    It keeps a hot copy of the records of the customers it used last
    (:attr:`records`), live: a batch folds into them in place. The copy holds
    at most ``cache_customers``; past that the least recently used leave it.
    A customer missing from it — never read, or evicted — is read from the
    store in the batch's own transaction, and a batch that did not commit
    marks the whole copy stale, to be dropped before the next batch: the copy
    is a cache and the store decides (it holds every saved state and its
    version, so an evicted record comes back exactly as it left).
    Its :class:`~churnwatch.engine.lanes.Lanes`, rebuilt by :meth:`reload` after
    every rebalance from each customer's saved standing (not its record), hold
    each partition's value-tier population and wake-up queue of silent
    customers. Each batch counts in event-time order, with silence aged in
    between, exactly as replay counts the store.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        allowed_lateness_s: float,
        clock: Callable[[], datetime] = store.utcnow,
        scorer: Callable[[], Scorer] = RuleScorer,
        policy: Policy | None = None,
        playbook: Playbook | None = None,
        partitions: int = 1,
        cache_customers: int = 100_000,
    ) -> None:
        self.engine = engine
        self.lanes = Lanes(policy or load_policy(), playbook or load_playbook(), partitions)
        #: returns the scorer to use now (a newly promoted model, say)
        self.scorer = scorer
        self.allowed_lateness_s = allowed_lateness_s
        self.clock = clock
        #: most records :attr:`records` keeps between batches
        self.cache_customers = cache_customers
        #: the hot copy, least recently used first
        self.records: OrderedDict[str, CustomerRecord] = OrderedDict()
        #: the stored version each record was read at or last saved as (fencing)
        self.versions: dict[str, int] = {}
        #: the partitions :meth:`reload` loaded (``None``: all)
        self._owned: Sequence[int] | None = None
        #: a batch failed part-way: its customers' records may be ahead of the store
        self._stale = False
        # process runs in worker threads, reload on a rebalance: one at a time
        self._lock = threading.Lock()

    def reload(self, partitions: Sequence[int] | None = None) -> int:
        """Rebuild the lanes of ``partitions`` (default: all) from the store; return the count.

        Only each customer's standing is read, streamed; records are read as
        batches need them. Everything held is dropped: it may be stale by the
        time its partition comes back.
        """
        with self._lock:
            return self._load(partitions)

    def _load(self, partitions: Sequence[int] | None) -> int:
        self.records, self.versions = OrderedDict(), {}
        with self.engine.connect() as conn:
            rankings = {
                lane: Ranking(day, snapshots)
                for lane, (day, snapshots) in store.load_rankings(conn, partitions).items()
            }
            standings = _standings(store.stream_standings(conn, partitions))
            count = self.lanes.restart(standings, rankings)
        self._owned, self._stale = partitions, False
        return count

    def commit(self, accepted: Sequence[tuple[RawRecord, Event]]) -> Committed:
        """Store the new events of ``accepted`` and count them, in event-time order."""
        now = self.clock()
        with self._lock:
            # A batch that did not commit left its records and the timeline ahead
            # of the store; failures are rare, so reading the store again beats
            # copying every record a batch touches.
            if self._stale:
                self._load(self._owned)
            try:
                return self._fold(accepted, now)
            except (_Raced, store.StaleState):
                # another writer got there first (an event id, or a customer's
                # newer state from a partition's new owner): count again on
                # top of what the store holds now
                self._stale = True
                self._load(self._owned)
                return self._fold(accepted, now)
            except BaseException:
                self._stale = True
                raise

    def _fold(self, accepted: Sequence[tuple[RawRecord, Event]], now: datetime) -> Committed:
        result = Committed()

        # A second record with an id already in this batch is a duplicate, not new.
        first_of_id: dict[str, tuple[RawRecord, Event]] = {}
        for record, event in accepted:
            if event.event_id in first_of_id:
                first = first_of_id[event.event_id][0]
                error = _duplicate_message(event.event_id, first.source)
                result.dead_letters.append(DeadLetter.of(record, error, now))
            else:
                first_of_id[event.event_id] = (record, event)

        with self.engine.begin() as conn:
            stored_from = store.sources_of(conn, first_of_id)
            new: list[tuple[RawRecord, Event]] = []
            for eid, (record, event) in first_of_id.items():
                if eid not in stored_from:
                    new.append((record, event))
                elif stored_from[eid] == record.source:
                    result.redelivered += 1
                else:
                    error = _duplicate_message(eid, stored_from[eid])
                    result.dead_letters.append(DeadLetter.of(record, error, now))
            # the customers of these events, and the silent ones they wake
            events = [e for _, e in new]
            wanted = {e.customer_id for e in events} | self.lanes.due_by(events)
            missing = wanted - self.records.keys()
            cold = store.load_versioned_states(conn, customer_ids=missing) if missing else {}
            loaded = {cid: CustomerRecord.from_row(cid, row) for cid, (row, _) in cold.items()}
            read_at = ChainMap({cid: version for cid, (_, version) in cold.items()}, self.versions)
            get = _lookup(self.records, loaded)

            # Lateness is judged in arrival order, as the records came; then the
            # accepted events are folded, and stored (``seq``), in event-time order.
            late = self._late(new, get)
            for record, event in new:
                if id(event) in late:
                    error = _too_late_message(event, late[id(event)], self.allowed_lateness_s)
                    result.dead_letters.append(DeadLetter.of(record, error, now))
            ordered = sorted(
                ((r, e) for r, e in new if id(e) not in late),
                key=lambda pair: (pair[1].epoch_s, pair[1].event_id),
            )
            run = self.lanes.run([event for _, event in ordered], get, self.scorer())
            partitions = {cid: self.lanes.lane_of(cid) for cid in run.touched}
            rows = []
            for record, event in ordered:
                partitions[event.customer_id] = record.partition
                rows.append(_event_row(record, event, now))
            new_ids = store.append_events(conn, rows)
            if len(new_ids) != len(rows):
                raise _Raced
            result.changes = run.changes
            result.alerts = run.assessment.alerts
            result.tasks = run.assessment.tasks
            result.endings = run.assessment.endings
            result.scored, result.scoring_s = len(run.values), run.scoring_s
            saved = self._save(conn, run.touched, partitions, read_at, result)
            store.save_rankings(
                conn, {lane: (r.day, r.snapshots) for lane, r in run.rankings.items()}
            )
        self._keep(run.touched, saved)
        result.stored = len(new_ids)
        return result

    def _keep(self, touched: Mapping[str, CustomerRecord], saved: Mapping[str, int]) -> None:
        """Hold the committed records as the most recently used; evict past the bound."""
        for cid, record in touched.items():
            self.records[cid] = record
            self.records.move_to_end(cid)
        self.versions.update(saved)
        while len(self.records) > self.cache_customers:
            cid, _ = self.records.popitem(last=False)
            del self.versions[cid]

    def _late(
        self,
        arrived: Sequence[tuple[RawRecord, Event]],
        get: Callable[[str], CustomerRecord | None],
    ) -> dict[int, float]:
        """``id(event)`` → its customer's clock, for events that arrived too late for it.

        The clock is the newest event time of the customer counted so far,
        stored or earlier in this batch: whether an event is late depends on
        what came before it, never on which batch it shared.
        """
        clocks: dict[str, float | None] = {}
        late: dict[int, float] = {}
        for _, event in arrived:
            cid, at = event.customer_id, event.epoch_s
            if cid not in clocks:
                record = get(cid)
                clocks[cid] = None if record is None else record.features.last_event_s
            clock = clocks[cid]
            if clock is not None and is_too_late(clock, at, self.allowed_lateness_s):
                late[id(event)] = clock
            elif clock is None or at > clock:
                clocks[cid] = at
        return late

    def _save(
        self,
        conn: Connection,
        working: Mapping[str, CustomerRecord],
        partitions: Mapping[str, int],
        read_at: Mapping[str, int],
        result: Committed,
    ) -> dict[str, int]:
        """Write changed customers, their changes, alerts and tasks; the new state versions.

        Each state is saved over the version it was read at (``read_at``), so a
        writer that lost its partitions cannot overwrite what their new owner
        saved (:class:`~churnwatch.store.StaleState`). The caller adds new
        customers to the hot copy once the transaction has committed.
        """
        rows = []
        for cid, partition in partitions.items():
            row = state_row(working[cid], partition)
            result.states[cid] = row["state"]
            rows.append({**row, "version": read_at.get(cid)})
        saved = store.save_states(conn, rows)
        # A late event can move a customer's stage back in time, so that silence
        # re-derives a change (and its alert) already recorded: the id is the
        # same, the store keeps the first, and only new records are published.
        new_changes = store.add_changes(conn, result.changes)
        result.changes = [c for c in result.changes if c["change_id"] in new_changes]
        new_alerts = store.add_alerts(conn, [_alert_row(alert) for alert in result.alerts])
        result.alerts = [a for a in result.alerts if a["alert_id"] in new_alerts]
        new_tasks = store.add_tasks(conn, result.tasks)
        result.tasks = [t for t in result.tasks if t["task_id"] in new_tasks]
        store.end_alerts(conn, result.endings)
        return saved


def state_row(record: CustomerRecord, partition: int) -> dict[str, Any]:
    """The ``customer_state`` row of ``record`` (without its version), as a save writes it."""
    rfm = record.rfm
    return {
        "customer_id": record.customer_id,
        "partition": partition,
        "state": record.row(),
        "lifecycle_stage": record.stage,
        "value_tier": record.value_tier,
        "score": record.score,
        "scored_at": _moment(record.scored_at),
        # the standing an assignment reads instead of the state (store.stream_standings)
        "last_event_s": record.last_event_s,
        "next_due_s": record.next_due(),
        "last_purchase_s": rfm.last_purchase_s,
        "frequency_365d": rfm.frequency_365d,
        "monetary_365d": rfm.monetary_365d,
    }


def _standings(rows: Iterable[Any]) -> Iterator[Resumable]:
    """Stored standings as lanes take them; a row saved without one gives its record."""
    for row in rows:
        if row.state is not None:
            yield CustomerRecord.from_row(row.customer_id, row.state)
        else:
            rfm = RFM(row.last_purchase_s, row.frequency_365d, row.monetary_365d)
            yield Standing(row.customer_id, rfm, row.next_due_s, row.last_event_s)


def _lookup(
    *sources: Mapping[str, CustomerRecord],
) -> Callable[[str], CustomerRecord | None]:
    """``get(customer_id)``: the record from the first of ``sources`` holding it."""

    def get(customer_id: str) -> CustomerRecord | None:
        for source in sources:
            record = source.get(customer_id)
            if record is not None:
                return record
        return None

    return get


def _event_row(record: RawRecord, event: Event, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "customer_id": event.customer_id,
        "topic": record.event_topic,
        "type": event.type,
        "ts": event.ts,
        "payload": payload_of(event),
        "source": record.source,
        "stored_at": now,
    }


def _moment(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, tz=UTC)


def _too_late_message(event: Event, clock_s: float, lateness_s: float) -> str:
    newest = datetime.fromtimestamp(clock_s, tz=event.ts.tzinfo)
    behind = (newest - event.ts).total_seconds() / 3600
    return (
        f"too late: ts {event.ts.isoformat()} is {behind:.1f} h before the newest event "
        f"of customer {event.customer_id!r} ({newest.isoformat()}); "
        f"allowed lateness {lateness_s / 3600:.1f} h"
    )


def _duplicate_message(event_id: str, first_source: str | None) -> str:
    return f"duplicate event_id {event_id!r}: already stored from {first_source}"


def _alert_row(alert: ChurnAlert) -> dict[str, Any]:
    return {**alert, "ts": datetime.fromisoformat(alert["ts"])}
