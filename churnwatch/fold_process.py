"""The fold in a process of its own, so that it does not share a core with Faust.

Per event, the worker's event loop spends about as much CPU in Faust
(fetching, batching, acknowledging) as the fold spends storing and counting
it, and in one Python process the two take turns on one core. So the
:class:`~churnwatch.pipeline.BatchProcessor` — the hot copy of the records,
the lanes and the scorer — lives in a child process, and the worker hands it
raw records and publishes what comes back.

The child holds nothing the store does not: if it dies, the next call starts a
new one, which first reads the worker's partitions from the store again.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from churnwatch import store
from churnwatch.alerts.config import DEFAULT_PLAYBOOK, DEFAULT_POLICY, load_playbook, load_policy
from churnwatch.model_source import ModelSource
from churnwatch.pipeline import BatchProcessor, BatchResult, RawRecord
from churnwatch.settings import Settings

#: how often the child checks that the worker that started it is still there (s)
PARENT_CHECK_S = 1.0

_processor: BatchProcessor | None = None


def processor_for(settings: Settings) -> BatchProcessor:
    """The worker's batch processor, on its own engine for ``settings.db_url``."""
    engine = store.make_engine(settings.db_url)
    return BatchProcessor(
        engine,
        max_future_s=settings.max_future_s,
        allowed_lateness_s=settings.allowed_lateness_s,
        scorer=ModelSource(engine, pinned=settings.model, check_every_s=settings.model_check_s),
        policy=load_policy(settings.policy_file or DEFAULT_POLICY),
        playbook=load_playbook(settings.playbook_file or DEFAULT_PLAYBOOK),
        partitions=settings.partitions,
    )


def _start_child(settings: Settings, parent: int) -> None:
    """Child start-up: build the processor, and leave when the worker is gone."""
    global _processor
    _processor = processor_for(settings)

    def watch() -> None:
        # A worker killed outright (SIGKILL) cannot stop its child: the child
        # notices that it was handed to another parent and goes too.
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _reload(partitions: Sequence[int]) -> int:
    assert _processor is not None
    return _processor.reload(partitions)


def _process(records: Sequence[RawRecord]) -> BatchResult:
    assert _processor is not None
    return _lean(_processor.process(records))


def _record_outcomes(records: Sequence[RawRecord]) -> BatchResult:
    assert _processor is not None
    return _lean(_processor.record_outcomes(records))


def _lean(result: BatchResult) -> BatchResult:
    """``result`` without what the worker does not publish (state rows, events)."""
    result.states, result.accepted = {}, []
    return result


class FoldProcess:
    """The worker's handle on the child process that folds its batches."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        #: the partitions last loaded, for a new child to load again
        self._owned: Sequence[int] | None = None
        #: whether the current child holds the state of :attr:`_owned`
        self._loaded = False

    async def start(self) -> int:
        """Start the child now rather than at the first batch; return its process id.

        A Python process takes seconds to start and import: done before the
        worker joins its group, that does not hold up the first rebalance.
        """
        return await self._call(os.getpid)

    async def reload(self, partitions: Sequence[int]) -> int:
        """Load the state of ``partitions`` from the store in the child; return the count."""
        self._owned = list(partitions)
        return await self._call(_reload, self._owned)

    async def process(self, records: Sequence[RawRecord]) -> BatchResult:
        """:meth:`BatchProcessor.process` in the child (its state rows left out)."""
        return await self._call(_process, list(records))

    async def record_outcomes(self, records: Sequence[RawRecord]) -> BatchResult:
        """:meth:`BatchProcessor.record_outcomes` in the child."""
        return await self._call(_record_outcomes, list(records))

    async def _call(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                # spawn, not fork: the worker runs threads and an event loop
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(self.settings, os.getpid()),
            )
            self._loaded = False
        try:
            if function is _reload:
                self._loaded = False
            elif function is not os.getpid and not self._loaded and self._owned is not None:
                # a new child after one died: its lanes must hold the partitions first
                await loop.run_in_executor(self._pool, _reload, self._owned)
                self._loaded = True
            result = await loop.run_in_executor(self._pool, function, *args)
            if function is _reload:
                self._loaded = True
            return result
        except BrokenProcessPool:
            self._pool = None  # the next call starts a new child
            raise

    async def close(self) -> None:
        """Let the current batch finish, then stop the child."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True)
