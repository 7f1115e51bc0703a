"""The fold in a child process: the same results as in-process, and no stall when it dies.

A real spawned child on a real store (SQLite and PostgreSQL): killed between
batches, frozen past its deadline, orphaned, and fed a record that fails in
the fold. Each time the batch is either committed once or retried, never lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.engine.commit import Committed
from churnwatch.engine.intake import Intake
from churnwatch.engine.isolation import isolate
from churnwatch.events import Event, PurchaseEvent
from churnwatch.features.state import KEEP_DAYS
from churnwatch.records import RawRecord
from churnwatch.settings import Settings
from churnwatch.sim.simulator import Simulation, customers_for, records
from churnwatch.store.errors import Retryable, is_transient
from churnwatch.streams.fold_process import FoldProcess, committer_for
from churnwatch.times import aware
from tests.reference import REFERENCE

EVENTS = 3000
BATCH = 250
#: where the histories end: the suite's reference time, a month's end (a
#: February) and a year's end, so that days, months and years turn mid-run
ANCHORS = {
    "reference": REFERENCE,
    "month-end": datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC),
    "year-end": datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
}

Pair = tuple[RawRecord, Event]


def _settings(url: str, **overrides: Any) -> Settings:
    chosen = {"partitions": 1, "allowed_lateness_s": KEEP_DAYS * 86400.0, **overrides}
    return Settings(db_url=url, web_port=0, **chosen)


def _batches(end: datetime = REFERENCE) -> list[list[Pair]]:
    """Simulated events up to ``end`` as the intake accepts them, in batches."""
    sim = Simulation(customers_for(EVENTS, 200), end - timedelta(days=200), end, seed=5)
    raws = [
        RawRecord(r.topic, 0, offset, r.key, r.value)
        for offset, r in enumerate(records(sim, limit=EVENTS, bad_share=0.0))
    ]
    accepted = Intake(max_future_s=86400, clock=lambda: end).decode(raws).accepted
    return [accepted[i : i + BATCH] for i in range(0, len(accepted), BATCH)]


def _outcome(results: Sequence[Committed]) -> dict[str, Any]:
    """Every record the batches published, whole (the stored states are compared apart)."""
    return {
        "stored": [r.stored for r in results],
        "alerts": [a for r in results for a in r.alerts],
        "tasks": [t for r in results for t in r.tasks],
        "changes": [c for r in results for c in r.changes],
        "endings": [e for r in results for e in r.endings],
        "dead_letters": [d for r in results for d in r.dead_letters],
    }


def _stored(url: str) -> dict[str, Any]:
    """What the store holds at the end: events in store order, and every customer's state."""
    engine = store.make_engine(url)
    try:
        with engine.connect() as conn:
            events = conn.execute(
                sa.select(
                    store.events.c.seq,
                    store.events.c.event_id,
                    store.events.c.customer_id,
                    store.events.c.ts,
                    store.events.c.payload,
                ).order_by(store.events.c.seq)
            ).all()
            return {
                "events": [
                    (e.seq, e.event_id, e.customer_id, aware(e.ts), e.payload) for e in events
                ],
                "states": store.load_states(conn),
                "rankings": store.load_rankings(conn),
            }
    finally:
        engine.dispose()


@pytest.fixture(params=list(ANCHORS))
def anchor(request: pytest.FixtureRequest) -> datetime:
    """The end of the history a test folds."""
    return ANCHORS[request.param]


@pytest.fixture
def reference(tmp_path: Path, anchor: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The batches committed in-process on a store of their own, uninterrupted."""
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    engine = store.make_engine(url)
    store.upgrade(engine)
    committer = committer_for(_settings(url), engine)
    committer.reload([0])
    outcome = _outcome([committer.commit(batch) for batch in _batches(anchor)])
    engine.dispose()
    return outcome, _stored(url)


@pytest.fixture
def migrated(db_url: str) -> str:
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    engine.dispose()
    return db_url


@pytest.fixture
def fold(migrated: str) -> Iterator[FoldProcess]:
    process = FoldProcess(_settings(migrated, fold_timeout_s=3.0))
    yield process
    process.close()


def _child_pid(fold: FoldProcess) -> int:
    assert fold._process is not None and fold._process.pid is not None
    return fold._process.pid


def test_the_child_commits_what_the_committer_commits_in_process(
    fold: FoldProcess,
    migrated: str,
    anchor: datetime,
    reference: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    assert fold.reload([0]) == 0
    batches = _batches(anchor)
    outcome = _outcome([fold.commit(batch) for batch in batches])
    assert outcome == reference[0]
    assert sum(outcome["stored"]) == sum(len(b) for b in batches) == EVENTS
    assert outcome["alerts"] and outcome["tasks"], "the history raises alerts to compare"
    assert {c["field"] for c in outcome["changes"]} == {"lifecycle_stage", "value_tier"}
    assert _stored(migrated) == reference[1]
    assert fold.restarts == 0


def test_a_child_killed_between_batches_is_restarted_and_counts_each_event_once(
    fold: FoldProcess,
    migrated: str,
    anchor: datetime,
    reference: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    fold.reload([0])
    results, killed = [], 0
    for i, batch in enumerate(_batches(anchor)):
        if i % 4 == 1:
            os.kill(_child_pid(fold), signal.SIGKILL)
            killed += 1
            with pytest.raises(Retryable, match="ended") as raised:
                fold.commit(batch)
            assert is_transient(raised.value)
        results.append(fold.commit(batch))  # the retry, in a new child that reloaded
    assert fold.restarts == killed == 3
    # every record and state row, whole: a reload reproduces the hot copy exactly
    assert _outcome(results) == reference[0]
    assert _stored(migrated) == reference[1]


def test_a_child_past_its_deadline_is_killed_and_the_batch_retried(
    fold: FoldProcess,
    migrated: str,
    anchor: datetime,
    reference: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    batches = _batches(anchor)
    fold.reload([0])
    results = [fold.commit(batches[0])]
    frozen = _child_pid(fold)
    os.kill(frozen, signal.SIGSTOP)
    with pytest.raises(Retryable, match="took over 3 s"):
        fold.commit(batches[1])
    with pytest.raises(ProcessLookupError):
        os.kill(frozen, 0)  # killed and reaped, not left behind
    results += [fold.commit(batch) for batch in batches[1:]]
    assert fold.restarts == 1
    assert _outcome(results) == reference[0]
    assert _stored(migrated) == reference[1]


@pytest.mark.parametrize("partitions", [1, 3])
def test_a_committer_reloaded_before_every_batch_publishes_what_one_never_reloaded_does(
    tmp_path: Path, anchor: datetime, partitions: int
) -> None:
    """The store decides: what a restart reads back reproduces every hot record.

    Value tiers are read against the ranks of the day they were taken on (saved
    with the batch), and a wake-up queued before an event moved it on changes
    nothing, so reloading between any two batches changes no output.
    """
    batches, owned = _batches(anchor), list(range(partitions))

    def run(name: str, reload_every_batch: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        url = f"sqlite:///{tmp_path / name}"
        engine = store.make_engine(url)
        store.upgrade(engine)
        committer = committer_for(_settings(url, partitions=partitions), engine)
        committer.reload(owned)
        results = []
        for batch in batches:
            if reload_every_batch:
                committer.reload(owned)
            results.append(committer.commit(batch))
        engine.dispose()
        return _outcome(results), _stored(url)

    uninterrupted, reloaded = run("hot.db", False), run("reloaded.db", True)
    assert reloaded == uninterrupted
    assert sorted(uninterrupted[1]["rankings"]) == owned


def test_a_record_that_fails_in_the_child_is_found_and_dead_lettered(
    fold: FoldProcess, migrated: str
) -> None:
    batch = _batches()[0]
    record, event = next((r, e) for r, e in batch if isinstance(e, PurchaseEvent))
    # passes validation yet overflows the fold (1e306 x 1000 is inf)
    poison = PurchaseEvent.model_construct(**{**event.__dict__, "amount": 1e306})
    batch = [(r, poison if r is record else e) for r, e in batch]
    result = isolate(fold.commit, batch, lambda pair: pair[0], Committed)
    [letter] = result.dead_letters
    assert letter.offset == record.offset
    assert letter.error.startswith("cannot be stored: OverflowError")
    assert result.stored == len(batch) - 1
    engine = store.make_engine(migrated)
    assert store.count_rows(engine, store.events) == len(batch) - 1
    engine.dispose()


_ORPHANING = """
import sys, time
from churnwatch.settings import Settings
from churnwatch.streams.fold_process import FoldProcess
fold = FoldProcess(Settings(db_url=sys.argv[1], partitions=1, web_port=0))
fold.reload([0])
print(fold._process.pid, flush=True)
time.sleep(600)
"""


def test_the_child_ends_when_the_worker_is_killed(migrated: str) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHANING, migrated], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # running
        parent.kill()
        parent.wait()
        for _ in range(300):  # it checks five times a second; allow a loaded machine
            if not _alive(child):
                break
            time.sleep(0.1)
        assert not _alive(child), "the fold process outlived its worker"
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, already ended, does not count)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return status != "Z"
