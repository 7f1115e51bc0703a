"""What the worker benchmarks share: a year of simulated customers, and a fresh
embedded broker, store and worker settings to run them through."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from churnwatch import store
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker
from churnwatch.sim.simulator import Simulation, customers_for
from churnwatch.topics import ensure_topics

PARTITIONS = 4


def year_of(events: int, seed: int, customers: int | None = None) -> Simulation:
    """A population sized for ``events`` records over the year up to now (or ``customers``)."""
    now = datetime.now(UTC).replace(microsecond=0)
    size = customers or customers_for(events, 365)
    return Simulation(size, now - timedelta(days=365), now, seed=seed)


@dataclass
class Rig:
    """An embedded broker with the topics, a migrated store and the worker's settings."""

    broker: EmbeddedBroker
    engine: sa.Engine
    settings: Settings
    folder: Path

    @property
    def log(self) -> Path:
        return self.folder / "worker.log"


@contextmanager
def rig(db_url: str | None = None) -> Iterator[Rig]:
    """A fresh :class:`Rig`; the store is a new SQLite file unless ``db_url`` is given."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        url = db_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = store.make_engine(url)
        store.upgrade(engine)
        ensure_topics(broker.bootstrap, PARTITIONS)
        env = Settings.from_env()
        settings = Settings(
            broker=broker.bootstrap,
            db_url=url,
            partitions=PARTITIONS,
            web_port=0,
            # the history is produced in bulk: allow the most lateness there is
            allowed_lateness_s=KEEP_DAYS * 86400.0,
            # CHURNWATCH_ORDER_IDLE_S=0 measures the worker without event-time order;
            # CHURNWATCH_LOOP and _FETCH_MAX_WAIT_MS compare loops and fetch waits,
            # CHURNWATCH_FOLD_PROCESS=false the fold in a thread of the worker,
            # CHURNWATCH_BATCH_WITHIN_S how long a batch may wait to fill,
            # CHURNWATCH_GC_THRESHOLD the garbage collector's (0: Python's own)
            order_idle_s=env.order_idle_s,
            batch_within_s=env.batch_within_s,
            fetch_max_wait_ms=env.fetch_max_wait_ms,
            loop=env.loop,
            fold_process=env.fold_process,
            gc_threshold=env.gc_threshold,
        )
        yield Rig(broker, engine, settings, Path(tmp))
        engine.dispose()


def descendants(pid: int) -> list[int]:
    """The ids of ``pid``'s child processes and theirs (Linux ``/proc``)."""
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return children + [d for child in children for d in descendants(child)]


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds process ``pid`` has used so far (Linux ``/proc``)."""
    # the fields after the command's closing parenthesis; utime and stime are 14 and 15
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
