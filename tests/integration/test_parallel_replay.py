"""Replay split over worker processes or a Dask cluster equals the single-process replay."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.alerts.config import load_playbook, load_policy
from churnwatch.events import from_payload
from churnwatch.models.rule import RuleScorer
from churnwatch.offline import api, parallel
from churnwatch.offline.replay import Replayed, replay_history
from churnwatch.sim.simulator import Simulation, records
from tests.builders import store_rows

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PARTITIONS = 4
UNTIL = NOW - timedelta(days=20)


@pytest.fixture(scope="module")
def history() -> list:
    sim = Simulation(80, NOW - timedelta(days=240), NOW, seed=11, churn_share=0.5)
    events = [from_payload(orjson.loads(r.value)) for r in records(sim, bad_share=0, limit=5000)]
    return sorted(events, key=lambda e: (e.epoch_s, e.event_id))


@pytest.fixture
def stored(engine: sa.Engine, history: list) -> sa.Engine:
    with engine.begin() as conn:
        store.append_events(conn, store_rows(reversed(history)))  # stored out of order
    return engine


def single_process(history: list) -> Replayed:
    """The reference: every lane in one replay, in the canonical order."""
    replayed = replay_history(
        history,
        RuleScorer(),
        load_policy(),
        load_playbook(),
        partitions=PARTITIONS,
        until=UNTIL.timestamp(),
    )
    return parallel.combine([replayed])


def replay(engine: sa.Engine, **how: object) -> tuple[Replayed, int]:
    progress: list[int] = []
    replayed = api.replay(
        engine,
        until=UNTIL,
        scorer=RuleScorer(),
        partitions=PARTITIONS,
        on_event=progress.append,
        **how,  # type: ignore[arg-type]
    )
    return replayed, sum(progress)


@pytest.mark.parametrize("workers", [1, 2, PARTITIONS, PARTITIONS + 3])
def test_worker_processes_replay_exactly_what_one_process_replays(
    stored: sa.Engine, history: list, workers: int
) -> None:
    expected = single_process(history)
    assert len(expected.alerts) > 20 and expected.changes and expected.tasks  # it proves something
    replayed, reported = replay(stored, workers=workers)
    assert replayed == expected
    assert reported == replayed.replayed == sum(e.epoch_s <= UNTIL.timestamp() for e in history)
    assert replayed.first_s == history[0].epoch_s and replayed.last_s == history[-1].epoch_s


def test_the_canonical_order_is_time_then_id_and_customer_by_customer(history: list) -> None:
    replayed = single_process(history)
    assert [(a["ts"], a["alert_id"]) for a in replayed.alerts] == sorted(
        (a["ts"], a["alert_id"]) for a in replayed.alerts
    )
    assert replayed.trace.customers == sorted(replayed.trace.customers)
    assert list(replayed.trace.customer) == sorted(replayed.trace.customer)
    assert list(replayed.purchases) == sorted(replayed.purchases)


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def test_a_dask_cluster_replays_exactly_what_one_process_replays(
    stored: sa.Engine, history: list, dask_address: str
) -> None:
    expected = single_process(history)
    replayed, reported = replay(stored, dask=dask_address)
    assert replayed == expected
    assert reported == replayed.replayed
    three, _ = replay(stored, dask=dask_address, workers=3)  # more tasks than the cluster's threads
    assert three == expected


def test_bad_settings_and_failing_workers_are_clear_errors(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade(engine)
    with pytest.raises(parallel.ReplayError, match="workers must be at least 1, not 0"):
        api.replay(engine, scorer=RuleScorer(), partitions=PARTITIONS, workers=0)
    memory = store.make_engine("sqlite://")
    store.upgrade(memory)
    with pytest.raises(parallel.ReplayError, match="in-memory SQLite store cannot be shared"):
        api.replay(memory, scorer=RuleScorer(), partitions=PARTITIONS, workers=2)
    assert api.replay(memory, scorer=RuleScorer(), partitions=PARTITIONS).replayed == 0
    not_a_store = f"sqlite:///{tmp_path / 'empty.db'}"
    jobs = parallel.lane_jobs(
        not_a_store,
        2,
        partitions=PARTITIONS,
        scorer=RuleScorer(),
        policy=load_policy(),
        playbook=load_playbook(),
    )
    with pytest.raises(parallel.ReplayError, match=r"replay worker \d \(lanes .*\) failed") as exc:
        parallel.replay_in_processes(jobs)
    assert "no such table: events" in str(exc.value)
    with pytest.raises(parallel.ReplayError, match="cannot reach the Dask scheduler at tcp://"):
        parallel.dask_threads("tcp://127.0.0.1:9", timeout_s=1)


def test_the_replay_command_finds_the_same_with_any_number_of_workers(
    stored: sa.Engine, tmp_path: Path
) -> None:
    env = {**os.environ, "CHURNWATCH_DB_URL": stored.url.render_as_string(hide_password=False)}

    def backtest(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "churnwatch", "replay", "--json", *extra],
            env={**env, "CHURNWATCH_PARTITIONS": str(PARTITIONS)},
            capture_output=True,
            text=True,
            timeout=300,
        )

    bad = backtest("--workers", "0")
    assert bad.returncode == 2 and "--workers" in bad.stderr
    found = []
    for workers in ("1", "3"):
        done = backtest("--workers", workers, "--report", str(tmp_path / workers))
        assert done.returncode == 0, done.stderr
        findings = orjson.loads(done.stdout.splitlines()[-1])
        del findings["report"]
        found.append(findings)
    assert found[0] == found[1] and found[0]["events"] > 0
