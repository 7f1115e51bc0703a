"""Replay split by lanes: over worker processes, or over a Dask cluster.

Lanes are independent timelines (engine/lanes.py): a customer's events, tier
population, silence and alerts all stay in the lane of its partition. So a
replay of some lanes raises exactly what a replay of all raises for them, and
the lanes can run side by side. Each worker opens the store from its URL and
reads the events of its own lanes; :func:`combine` joins what they return in
one canonical order, the same for any number of workers (one included).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import traceback
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.alerts.config import Playbook, Policy
from churnwatch.events import from_payload
from churnwatch.models.scoring import Scorer
from churnwatch.offline.replay import Replayed, replay_history
from churnwatch.topics import partition_of

#: how long a replay waits for a Dask scheduler to answer
DASK_TIMEOUT_S = 10.0


class ReplayError(RuntimeError):
    """A parallel replay could not run: a bad setting, or a worker that failed."""


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class LaneJob:
    """One worker's share of a replay: everything it needs, as picklable data."""

    db_url: str
    #: the lanes (input partitions) this worker replays
    lanes: tuple[int, ...]
    partitions: int
    scorer: Scorer
    policy: Policy
    playbook: Playbook
    until: float | None = None
    chunk: int = 20_000


def lane_jobs(
    db_url: str,
    workers: int,
    *,
    partitions: int,
    scorer: Scorer,
    policy: Policy,
    playbook: Playbook,
    until: float | None = None,
) -> list[LaneJob]:
    """The lanes dealt round-robin to ``workers`` (at most one worker per lane)."""
    if workers < 1:
        raise ReplayError(f"workers must be at least 1, not {workers}")
    count = min(workers, partitions)
    return [
        LaneJob(
            db_url, tuple(range(k, partitions, count)), partitions, scorer, policy, playbook, until
        )
        for k in range(count)
    ]


@contextmanager
def _few_collections() -> Iterator[None]:
    """Run the cyclic garbage collector rarely while replaying.

    A replay allocates a great many objects and frees them by reference
    counting; full collections would walk every customer's state again and
    again for almost nothing to free.
    """
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def replay_lanes(
    job: LaneJob, on_event: Callable[[int], None] | None = None, *, engine: Engine | None = None
) -> Replayed:
    """Replay the stored events of ``job``'s lanes (from ``engine``, else ``job.db_url``)."""
    own = engine is None
    source = store.make_engine(job.db_url) if engine is None else engine
    mine = frozenset(job.lanes)
    lane: dict[str, bool] = {}

    def keep(customer_id: str) -> bool:
        ours = lane.get(customer_id)
        if ours is None:
            ours = lane[customer_id] = partition_of(customer_id, job.partitions) in mine
        return ours

    try:
        with _few_collections(), source.connect() as conn:
            every = mine == frozenset(range(job.partitions))
            payloads = store.read_events(conn) if every else store.read_events_of(conn, keep)
            return replay_history(
                (from_payload(p) for p in payloads),
                job.scorer,
                job.policy,
                job.playbook,
                partitions=job.partitions,
                until=job.until,
                chunk=job.chunk,
                on_event=on_event,
            )
    finally:
        if own:
            source.dispose()


def combine(parts: Iterable[Replayed]) -> Replayed:
    """One replay from replays of disjoint sets of customers, in a canonical order.

    Alerts, tasks and changes are sorted by time and id; the trace and the
    purchases by customer id, each customer's steps in the order they happened.
    So the result depends on the stored events alone, not on how the lanes
    were split or batched.
    """
    parts = list(parts)
    out = Replayed()
    out.first_s = min((p.first_s for p in parts if p.first_s is not None), default=None)
    out.last_s = max((p.last_s for p in parts if p.last_s is not None), default=None)
    steps: dict[str, tuple[Replayed, list[int]]] = {}
    for part in parts:
        out.alerts.extend(part.alerts)
        out.tasks.extend(part.tasks)
        out.changes.extend(part.changes)
        out.purchases.update(part.purchases)
        for code, count in part.currencies.items():
            out.currencies[code] = out.currencies.get(code, 0) + count
        out.replayed += part.replayed
        positions: dict[int, list[int]] = {}
        for i, customer in enumerate(part.trace.customer):
            positions.setdefault(customer, []).append(i)
        for customer, at in positions.items():
            steps[part.trace.customers[customer]] = (part, at)
    out.alerts.sort(key=lambda a: (a["ts"], a["alert_id"]))
    out.tasks.sort(key=lambda t: (t["ts"], t["task_id"]))
    out.changes.sort(key=lambda c: (c["ts"], c["change_id"]))
    out.purchases = {cid: out.purchases[cid] for cid in sorted(out.purchases)}
    out.currencies = dict(sorted(out.currencies.items()))
    trace = out.trace
    for cid in sorted(steps):
        part, at = steps[cid]
        source = part.trace
        trace.index[cid] = len(trace.customers)
        trace.customer.extend(array("i", [len(trace.customers)]) * len(at))
        trace.customers.append(cid)
        for column in ("at", "kind", "tier", "value"):
            values = getattr(source, column)
            getattr(trace, column).extend(values[i] for i in at)
        sets, segment = source.segment_sets, source.segment
        trace.segment.extend(trace.segment_set(sets[segment[i]]) for i in at)
    return out


def _child(conn: Connection, job: LaneJob) -> None:
    """A worker process: progress and then the result, or the error, over ``conn``."""
    try:
        result = replay_lanes(job, lambda n: conn.send(("progress", n)))
    except BaseException:  # the parent reports it; this process ends either way
        conn.send(("error", traceback.format_exc()))
    else:
        conn.send(("done", result))
    finally:
        conn.close()


def replay_in_processes(
    jobs: Sequence[LaneJob],
    on_event: Callable[[int], None] | None = None,
    *,
    engine: Engine | None = None,
) -> Replayed:
    """Each job in a process of its own (spawned: no state inherited), combined.

    One job runs in this process, on ``engine`` if given: there is nothing to share.
    """
    if len(jobs) == 1:
        return combine([replay_lanes(jobs[0], on_event, engine=engine)])
    context = multiprocessing.get_context("spawn")
    running: dict[Any, tuple[int, Any]] = {}
    results: dict[int, Replayed] = {}
    try:
        for k, job in enumerate(jobs):
            ours, theirs = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(theirs, job), daemon=True)
            process.start()
            theirs.close()
            running[ours] = (k, process)
        while running:
            ready: list[Any] = wait(list(running))
            for conn in ready:
                k, process = running[conn]
                try:
                    kind, value = conn.recv()
                except EOFError:
                    process.join()
                    raise ReplayError(
                        f"replay worker {k} (lanes {jobs[k].lanes}) exited with code "
                        f"{process.exitcode} before it finished"
                    ) from None
                if kind == "progress":
                    if on_event is not None:
                        on_event(value)
                    continue
                del running[conn]
                conn.close()
                process.join()
                if kind == "error":
                    raise ReplayError(f"replay worker {k} (lanes {jobs[k].lanes}) failed:\n{value}")
                results[k] = value
    finally:
        for conn, (_, process) in running.items():
            process.kill()
            process.join()
            conn.close()
    return combine(results[k] for k in range(len(jobs)))


def dask_threads(address: str, timeout_s: float = DASK_TIMEOUT_S) -> int:
    """How many tasks the Dask cluster at ``address`` runs at once."""
    with _dask_client(address, timeout_s) as client:
        return max(1, sum(client.nthreads().values()))


@contextmanager
def _dask_client(address: str, timeout_s: float) -> Iterator[Any]:
    try:
        from distributed import Client
    except ImportError:
        raise ReplayError(
            "--dask needs Dask's distributed package: pip install 'churnwatch[dask]'"
        ) from None
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ReplayError(
            f"cannot reach the Dask scheduler at {address} within {timeout_s:g} s: {exc}"
        ) from None
    try:
        yield client
    finally:
        client.close()


def replay_on_dask(
    jobs: Sequence[LaneJob],
    address: str,
    on_event: Callable[[int], None] | None = None,
    *,
    timeout_s: float = DASK_TIMEOUT_S,
) -> Replayed:
    """Each job as a task on the Dask cluster at ``address``, combined.

    The cluster's workers open the store from the jobs' URL themselves, so
    they must reach it (a file path on every machine, or a database server).
    """
    from distributed import as_completed

    with _dask_client(address, timeout_s) as client:
        futures = [client.submit(replay_lanes, job, pure=False) for job in jobs]
        results: dict[int, Replayed] = {}
        order = {future.key: k for k, future in enumerate(futures)}
        for future in as_completed(futures, loop=client.loop):
            k = order[future.key]
            try:
                results[k] = future.result()
            except Exception as exc:
                raise ReplayError(
                    f"replay task {k} (lanes {jobs[k].lanes}) failed on the cluster: {exc!r}"
                ) from exc
            if on_event is not None:
                on_event(results[k].replayed)
    return combine(results[k] for k in range(len(jobs)))
