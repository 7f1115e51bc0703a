"""One batch of raw input records → store, customer state, alerts, dead letters.

Plain Python, no Faust: the stream agent hands in what it consumed and sends
out what comes back. Everything a batch changes in SQL — new events, the state
of the customers they touched, the alerts they raised — is written in one
transaction, and only events that were new to the store are folded, so a
redelivered batch changes nothing (DESIGN.md, "the store decides").
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from churnwatch import store
from churnwatch.alerts.config import Playbook, Policy, load_playbook, load_policy
from churnwatch.customer import CustomerRecord
from churnwatch.events import Event, InvalidEvent, decode, payload_of
from churnwatch.lanes import Lanes
from churnwatch.models.rule import RuleScorer
from churnwatch.models.scoring import Scorer
from churnwatch.outcomes import decode_outcome
from churnwatch.topics import REKEYED


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A consumed record as it came off the wire."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    #: The topic the record was first produced to (differs for re-keyed records).
    origin_topic: str | None = None
    #: Where the record was first seen, e.g. ``purchases/2/1734``.
    origin: str | None = None

    @property
    def source(self) -> str:
        """Original position: identifies a redelivery of the same record."""
        return self.origin or f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def event_topic(self) -> str:
        """The input topic whose schema applies."""
        return self.origin_topic or self.topic


@dataclass
class BatchResult:
    """What a batch produced, for the caller to publish after the commit."""

    #: customer_id → new state row (:meth:`CustomerRecord.row`)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: ``winback-tasks`` records, one per new alert
    tasks: list[dict[str, Any]] = field(default_factory=list)
    #: alerts (and their tasks) that ended: won back, expired, escalated
    endings: list[dict[str, Any]] = field(default_factory=list)
    #: ``customer-changes`` records: lifecycle stage and value tier moves
    changes: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    #: valid records whose Kafka key is not their customer_id: to be re-keyed
    misrouted: list[tuple[str, RawRecord]] = field(default_factory=list)
    #: valid records with their events, after :meth:`BatchProcessor.decode`
    accepted: list[tuple[RawRecord, Event]] = field(default_factory=list)
    stored: int = 0
    redelivered: int = 0
    #: assessments scored, and the wall seconds the model took for them
    scored: int = 0
    scoring_s: float = 0.0


def dead_letter(record: RawRecord, error: str, now: datetime) -> dict[str, Any]:
    """The ``dead-letters`` record for ``record`` (DESIGN.md shape)."""
    letter: dict[str, Any] = {
        "source_topic": record.event_topic,
        "partition": record.partition,
        "offset": record.offset,
        "error": error,
        "ts": now.isoformat(),
    }
    if record.origin:
        letter["origin"] = record.origin
    raw = record.value or b""
    try:
        letter["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        letter["raw"] = base64.b64encode(raw).decode("ascii")
        letter["raw_encoding"] = "base64"
    return letter


class _Raced(Exception):
    """Another writer stored one of this batch's event ids first: redo the batch."""


class BatchProcessor:
    """Validates, stores and folds batches of raw records.

    It keeps the hot copy of the records of the customers it owns
    (:attr:`records`), live: a batch folds into them in place. A customer
    missing from it is read from the store in the batch's own transaction, and
    a batch that did not commit marks the whole copy stale, to be read again
    from the store before the next batch: the copy is a cache and the store
    decides.
    Its :class:`~churnwatch.lanes.Lanes`, rebuilt by :meth:`reload` after
    every rebalance, hold each partition's value-tier population and wake-up
    queue of silent customers. Each batch counts in event-time order, with
    silence aged in between, exactly as replay counts the store.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_future_s: float,
        allowed_lateness_s: float,
        clock: Callable[[], datetime] = store.utcnow,
        scorer: Callable[[], Scorer] = RuleScorer,
        policy: Policy | None = None,
        playbook: Playbook | None = None,
        partitions: int = 1,
    ) -> None:
        self.engine = engine
        self.lanes = Lanes(policy or load_policy(), playbook or load_playbook(), partitions)
        #: returns the scorer to use now (a newly promoted model, say)
        self.scorer = scorer
        self.max_future_s = max_future_s
        self.allowed_lateness_s = allowed_lateness_s
        self.clock = clock
        self.records: dict[str, CustomerRecord] = {}
        #: the stored version each record was read at or last saved as (fencing)
        self.versions: dict[str, int] = {}
        #: the partitions :meth:`reload` loaded (``None``: all)
        self._owned: Sequence[int] | None = None
        #: a batch failed part-way: its customers' records may be ahead of the store
        self._stale = False
        # process runs in worker threads, reload on a rebalance: one at a time
        self._lock = threading.Lock()

    def reload(self, partitions: Sequence[int] | None = None) -> int:
        """Load the state of ``partitions`` (default: all) from the store; return the count.

        Everything held for other partitions is dropped: it may be stale by the
        time they come back.
        """
        with self._lock:
            return self._load(partitions)

    def _load(self, partitions: Sequence[int] | None) -> int:
        with self.engine.connect() as conn:
            rows = store.load_versioned_states(conn, partitions)
        self.records = {cid: CustomerRecord.from_row(cid, row) for cid, (row, _) in rows.items()}
        self.versions = {cid: version for cid, (_, version) in rows.items()}
        self._owned, self._stale = partitions, False
        self.lanes.restart(self.records.values())
        return len(self.records)

    def decode(self, records: Sequence[RawRecord]) -> BatchResult:
        """Validate ``records``: the valid ones in :attr:`BatchResult.accepted`.

        The invalid ones are dead letters and the wrongly keyed ones are to be
        re-keyed; neither needs the store.
        """
        now = self.clock()
        result = BatchResult()
        accepted = result.accepted
        for record in records:
            try:
                event = decode(
                    record.event_topic, record.value, now=now, max_future_s=self.max_future_s
                )
            except InvalidEvent as exc:
                result.dead_letters.append(dead_letter(record, str(exc), now))
                continue
            key_ok = record.key == event.customer_id.encode()
            if not key_ok and record.topic != REKEYED:
                result.misrouted.append((event.customer_id, record))
                continue
            accepted.append((record, event))
        return result

    def process(self, records: Sequence[RawRecord]) -> BatchResult:
        """Process one batch of consumed records: :meth:`decode`, then :meth:`fold`."""
        decoded = self.decode(records)
        result = self.fold(decoded.accepted)
        result.dead_letters[:0] = decoded.dead_letters
        result.misrouted = decoded.misrouted
        return result

    def fold(self, accepted: Sequence[tuple[RawRecord, Event]]) -> BatchResult:
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

    def _fold(self, accepted: Sequence[tuple[RawRecord, Event]], now: datetime) -> BatchResult:
        result = BatchResult()

        # A second record with an id already in this batch is a duplicate, not new.
        first_of_id: dict[str, tuple[RawRecord, Event]] = {}
        for record, event in accepted:
            if event.event_id in first_of_id:
                first = first_of_id[event.event_id][0]
                error = _duplicate_message(event.event_id, first.source)
                result.dead_letters.append(dead_letter(record, error, now))
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
                    result.dead_letters.append(dead_letter(record, error, now))
            missing = {e.customer_id for _, e in new} - self.records.keys()
            cold = store.load_versioned_states(conn, customer_ids=missing) if missing else {}
            loaded = {cid: CustomerRecord.from_row(cid, row) for cid, (row, _) in cold.items()}
            read_at = {**self.versions, **{cid: version for cid, (_, version) in cold.items()}}
            get = _lookup(self.records, loaded)

            # Lateness is judged in arrival order, as the records came; then the
            # accepted events are folded, and stored (``seq``), in event-time order.
            late = self._late(new, get)
            for record, event in new:
                if id(event) in late:
                    error = _too_late_message(event, late[id(event)], self.allowed_lateness_s)
                    result.dead_letters.append(dead_letter(record, error, now))
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
        self.records.update(run.touched)
        self.versions.update(saved)
        result.stored = len(new_ids)
        return result

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
            if clock is not None and at < clock - self.allowed_lateness_s:
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
        result: BatchResult,
    ) -> dict[str, int]:
        """Write changed customers, their changes, alerts and tasks; the new state versions.

        Each state is saved over the version it was read at (``read_at``), so a
        writer that lost its partitions cannot overwrite what their new owner
        saved (:class:`~churnwatch.store.StaleState`). The caller adds new
        customers to the hot copy once the transaction has committed.
        """
        rows = []
        for cid, partition in partitions.items():
            record = working[cid]
            result.states[cid] = record.row()
            rows.append(
                {
                    "customer_id": cid,
                    "partition": partition,
                    "state": result.states[cid],
                    "lifecycle_stage": record.stage,
                    "value_tier": record.value_tier,
                    "score": record.score,
                    "scored_at": _moment(record.scored_at),
                    "version": read_at.get(cid),
                }
            )
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

    def record_outcomes(self, records: Sequence[RawRecord]) -> BatchResult:
        """Store ``winback-outcomes`` reports from the CRM and move tasks and alerts along.

        An invalid report, or one about a task churnwatch never issued, is a
        dead letter; a redelivered one changes nothing.
        """
        now = self.clock()
        result = BatchResult()
        valid = []
        for record in records:
            try:
                valid.append((record, decode_outcome(record.value)))
            except InvalidEvent as exc:
                result.dead_letters.append(dead_letter(record, str(exc), now))
        with self.engine.begin() as conn:
            new, unknown = store.add_outcomes(conn, [outcome for _, outcome in valid])
        for record, outcome in valid:
            if outcome.task_id in unknown:
                error = f"unknown task_id {outcome.task_id!r}: no win-back task has it"
                result.dead_letters.append(dead_letter(record, error, now))
        result.stored = len(new)
        return result


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


def _alert_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {**alert, "ts": datetime.fromisoformat(alert["ts"])}
