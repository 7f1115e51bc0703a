"""The fold in its own process: the same results, and a dead child costs nothing."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool

import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.fold_process import FoldProcess
from churnwatch.settings import Settings
from tests.test_pipeline import processor, purchase, rec


def _settings(db_url: str) -> Settings:
    # the tests' processor: one partition, 7 days of lateness, one hour ahead
    return Settings(db_url=db_url, partitions=1, allowed_lateness_s=7 * 86400, max_future_s=3600)


FIRST = [rec(purchase("e1", 0), 0), rec(purchase("e2", 10), 1)]
# 35 days after c1's last purchase, c2 buys: silence moves c1 on meanwhile
LATER = [rec(purchase("e3", 45, cid="c2"), 2, key=b"c2")]


def _moves(result) -> list[tuple[str, str, str, str]]:
    return [(c["customer_id"], c["field"], c["to_value"], c["ts"]) for c in result.changes]


def test_a_child_killed_between_batches_is_replaced_and_reads_the_store_again(
    engine: sa.Engine, db_url: str, tmp_path
) -> None:
    # the plain processor in this process, on a store of its own, is the reference
    reference_engine = store.make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    store.upgrade(reference_engine)
    reference = processor(reference_engine)
    reference.reload([0])
    reference.process(FIRST)
    expected = reference.process(LATER)
    stages = [m[2] for m in _moves(expected) if m[:2] == ("c1", "lifecycle_stage")]
    assert stages == ["cooling", "at_risk"]

    async def scenario() -> tuple:
        fold = FoldProcess(_settings(db_url))
        try:
            assert await fold.reload([0]) == 0
            first = await fold.process(FIRST)
            (child,) = multiprocessing.active_children()
            os.kill(child.pid, signal.SIGKILL)
            child.join(timeout=30)
            with pytest.raises(BrokenProcessPool):
                await fold.process(LATER)
            # a new child loads partition 0 from the store, then counts the batch
            later = await fold.process(LATER)
            again = await fold.process(LATER)
            (replacement,) = multiprocessing.active_children()
            return first, later, again, replacement.pid != child.pid
        finally:
            await fold.close()

    first, later, again, replaced = asyncio.run(scenario())
    assert replaced and first.stored == 2 and later.stored == 1
    # the worker gets no state rows back: it does not publish them
    assert first.states == {} and first.accepted == []
    # c1's silence was aged by the new child exactly as by the reference
    assert _moves(later) == _moves(expected)
    assert (again.stored, again.redelivered) == (0, 1)
    assert store.count_rows(engine, store.events) == 3
    reference_engine.dispose()


_ORPHAN_SCRIPT = """
import asyncio, multiprocessing, sys
from churnwatch.fold_process import FoldProcess
from churnwatch.settings import Settings

async def main():
    fold = FoldProcess(Settings(db_url=sys.argv[1], partitions=1))
    await fold.reload([0])
    (child,) = multiprocessing.active_children()
    print(child.pid, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def test_the_child_of_a_worker_killed_outright_goes_too(engine: sa.Engine, db_url: str) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, db_url], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(worker.stdout.readline())  # type: ignore[union-attr]
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + 60
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child)
    finally:
        worker.kill()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
