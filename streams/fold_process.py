"""The worker's fold in a child process: storing and counting beside the intake.

Python runs one thread of a process at a time, so in one process Faust's
consumer, the intake and the fold take turns on one core. Here the
:class:`~churnwatch.engine.commit.Committer` runs in a child process of its
own, behind the same two calls (``reload``, ``commit``), while the worker's
event loop goes on taking in and ordering the next records.

A plain ``multiprocessing`` process (spawned, so no lock or thread of the
parent is copied into it) with one pipe, one call at a time: no executor and
no helper threads in the parent that could wedge. The parent never waits
without a deadline:

- a call that takes longer than ``CHURNWATCH_FOLD_TIMEOUT_S`` kills the child;
- a child that died (EOF on the pipe) is noticed at once;
- either way the call fails as :class:`~churnwatch.store.errors.Retryable`, the
  worker retries the batch, and a new child first reloads the partitions the
  worker holds from the store. A batch that did not commit left nothing
  behind, so the retry counts it once (the store decides).

The worker starts the child before it joins its consumer group, from its main
thread. The child ends itself when the worker goes away: at once by
``PR_SET_PDEATHSIG``, on EOF of the pipe, and within :data:`ORPHAN_CHECK_S`
should its parent die mid-batch while the signal does not reach it (a child
restarted from another thread). A batch it was
committing then is fenced by the state versions (``StaleState``) should a new
owner have taken its partitions meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.alerts.config import DEFAULT_PLAYBOOK, DEFAULT_POLICY, load_playbook, load_policy
from churnwatch.engine.commit import Committed, Committer
from churnwatch.engine.model_source import ModelSource
from churnwatch.events import Event
from churnwatch.gc_tuning import tune_for_long_run
from churnwatch.records import RawRecord
from churnwatch.settings import Settings
from churnwatch.sim.broker import die_with_parent
from churnwatch.store.errors import Failed, Retryable, is_transient
from churnwatch.times import set_clock_offset

log = logging.getLogger(__name__)
#: how long a new child may take to import and open the store
START_TIMEOUT_S = 60.0
#: how often the child checks that the worker that started it still runs
ORPHAN_CHECK_S = 0.2
#: how long a stopping child may take to finish before it is killed
STOP_TIMEOUT_S = 5.0


class Folding(Protocol):
    """What the intake agent needs of whatever stores and folds its batches."""

    def reload(self, partitions: Sequence[int] | None = None) -> int: ...

    def commit(self, accepted: Sequence[tuple[RawRecord, Event]]) -> Committed: ...


def committer_for(settings: Settings, engine: Engine) -> Committer:
    """The worker's committer: its store, model source, policy and playbook."""
    return Committer(
        engine,
        allowed_lateness_s=settings.allowed_lateness_s,
        scorer=ModelSource(
            engine,
            models_dir=settings.models_dir,
            pinned=settings.model,
            check_every_s=settings.model_check_s,
        ),
        policy=load_policy(settings.policy_file or DEFAULT_POLICY),
        playbook=load_playbook(settings.playbook_file or DEFAULT_PLAYBOOK),
        partitions=settings.partitions,
        cache_customers=settings.cache_customers,
    )


class FoldProcess:
    """A :class:`Committer` in a child process, restarted whenever it fails to answer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout_s = settings.fold_timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        #: the partitions last loaded (``None``: all), if any were: what a new
        #: child loads before anything else
        self._owned: list[int] | None = None
        self._loaded = False
        #: calls come from the event loop's executor threads: one at a time
        self._lock = threading.Lock()
        #: children started after the first (killed or died)
        self.restarts = 0
        self._closed = False

    def start(self) -> None:
        """Start the child now: before the worker joins its group, not in a rebalance.

        A child starting takes a second or more (imports, the store); inside
        the first assignment that would hold up the group's join.
        """
        with self._lock:
            if self._conn is None:
                self._start()

    def reload(self, partitions: Sequence[int] | None = None) -> int:
        """Load the state of ``partitions`` in the child; return how many customers it holds."""
        with self._lock:
            self._owned = None if partitions is None else list(partitions)
            self._loaded = True
            if self._conn is None:
                return self._start()  # a new child loads what is owned anyway
            return int(self._call("reload", self._owned, self.timeout_s))

    def commit(self, accepted: Sequence[tuple[RawRecord, Event]]) -> Committed:
        """Store and fold ``accepted`` in the child (its result's ``states`` left empty)."""
        with self._lock:
            if self._conn is None:
                self._start()
            result = self._call("commit", list(accepted), self.timeout_s)
            assert isinstance(result, Committed)
            return result

    def close(self) -> None:
        """Stop the child: it finishes the call under way, or is killed."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send(("stop", None))
            self._end(STOP_TIMEOUT_S)

    def _start(self) -> int:
        """Start a child and load the owned partitions in it; return the count loaded."""
        if self._closed:
            raise Retryable("the fold process was stopped with the worker")
        if self._process is not None:
            self.restarts += 1
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=serve,
            args=(child, self.settings, os.getpid()),
            name="churnwatch-fold",
            daemon=True,
        )
        process.start()
        child.close()  # the parent keeps one end only, or EOF would never come
        self._process, self._conn = process, parent
        if not self._loaded:  # a committer that never loaded reads through as it goes
            return int(self._call("ready", None, START_TIMEOUT_S))
        return int(self._call("reload", self._owned, START_TIMEOUT_S + self.timeout_s))

    def _call(self, op: str, argument: Any, timeout_s: float) -> Any:
        conn, process = self._conn, self._process
        assert conn is not None and process is not None
        try:
            conn.send((op, argument))
            if not conn.poll(timeout_s):
                self._end(0)
                raise Retryable(f"the fold process took over {timeout_s:.0f} s: killed")
            kind, value = conn.recv()
        except (EOFError, OSError) as exc:
            self._end(STOP_TIMEOUT_S)
            code = process.exitcode
            raise Retryable(f"the fold process ended (exit code {code})") from exc
        if kind == "failed":
            transient, message = value
            raise Retryable(message) if transient else Failed(message)
        return value

    def _end(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the child to exit, then kill it; forget it."""
        process, conn = self._process, self._conn
        self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return
        process.join(timeout_s)
        if process.is_alive():
            log.warning("fold process %s did not stop: killing it", process.pid)
            process.kill()
            process.join()


def serve(conn: Connection, settings: Settings, parent_pid: int) -> None:
    """The child's loop: answer ``ready``, ``reload`` and ``commit`` calls until EOF or ``stop``."""
    set_clock_offset(settings.clock_offset_s)  # the worker's clock
    # Ctrl-C reaches the whole process group; the worker decides when its fold stops
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()  # follows the thread that started the child: the worker's main one
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="orphan-check"
    ).start()
    engine = store.make_engine(settings.db_url)
    committer = committer_for(settings, engine)
    tune_for_long_run(settings.gc_threshold)  # a batch's objects die before a collection
    try:
        while True:
            try:
                op, argument = conn.recv()
            except EOFError:
                return
            if op == "stop":
                return
            try:
                if op == "ready":
                    value: Any = 0
                elif op == "reload":
                    value = committer.reload(argument)
                else:
                    value = committer.commit(argument)
                    value.states = {}  # not needed by the publisher: not worth the pickling
                reply: tuple[str, Any] = ("ok", value)
            except Exception as exc:  # sent back: the parent decides between retry and split
                reply = ("failed", (is_transient(exc), f"{type(exc).__name__}: {exc}"))
            conn.send(reply)
    finally:
        engine.dispose()


def _exit_when_orphaned(parent_pid: int) -> None:
    """End this process soon after the worker that started it is gone."""
    while os.getppid() == parent_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(1)
