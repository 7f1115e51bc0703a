"""Running the Faust worker: store migrations, topics, then the app."""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import ExitStack

import faust
import mode.loop

from churnwatch import store
from churnwatch.gc_tuning import tune_for_long_run
from churnwatch.settings import DEFAULT_DATA_DIR, Settings
from churnwatch.sim.broker import EmbeddedBroker
from churnwatch.streams.app import create_app
from churnwatch.streams.web import guard_for
from churnwatch.topics import ensure_topics_for


class _Worker(faust.Worker):
    """A Faust worker whose shutdown on a signal takes at most ``shutdown_timeout_s``.

    Faust waits for its broker while it stops (a minute when the broker has
    gone); a watchdog ends the process once the timeout has passed. Records
    not committed by then are delivered again: the store decides.
    """

    shutdown_timeout_s: float = 10.0

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if not self._signal_stop_time:
            _exit_after(self.shutdown_timeout_s)
        super()._schedule_shutdown(signal)


def _exit_after(timeout_s: float) -> None:
    """End the process with code 1 in ``timeout_s`` unless it has exited by then."""

    def watch() -> None:
        if not stopped.wait(timeout_s):
            print(f"worker did not stop within {timeout_s:.0f} s: exiting", file=sys.stderr)
            sys.stderr.flush()
            os._exit(1)

    stopped = threading.Event()  # never set: a clean exit ends the daemon thread with it
    threading.Thread(target=watch, daemon=True, name="shutdown-watchdog").start()


def use_loop(name: str) -> None:
    """Run this process's event loop on ``name`` (``uvloop`` or ``asyncio``).

    Call it before anything makes a loop: Faust and mode take the policy's.
    """
    if name == "uvloop":
        # libuv's loop does Faust's and aiokafka's many small callbacks in less CPU
        mode.loop.use("uvloop")


def run_worker(settings: Settings, log_level: str = "warning") -> None:
    """Run the worker until it is stopped (SIGTERM or Ctrl-C).

    Without ``CHURNWATCH_BROKER`` an embedded broker is started first and
    stopped with the worker.
    """
    if settings.web_port > 0:
        guard_for(settings)  # no web server without a token: refuse before anything starts
    use_loop(settings.loop)
    with ExitStack() as stack:
        bootstrap = settings.broker
        if bootstrap is None:
            embedded = EmbeddedBroker(log_path=DEFAULT_DATA_DIR / "broker.log")
            bootstrap = stack.enter_context(embedded).bootstrap
            print(f"embedded broker on {bootstrap}", flush=True)
        engine = store.make_engine(settings.db_url)
        store.upgrade(engine)
        ensure_topics_for(settings, bootstrap)
        app = create_app(settings, bootstrap, engine)
        if app.fold_process is not None:
            app.fold_process.start()  # before the group join, from this long-lived thread
        worker = _Worker(app, loglevel=log_level, quiet=True)
        worker.shutdown_timeout_s = settings.shutdown_timeout_s
        tune_for_long_run(settings.gc_threshold)  # what start-up built lives until the end
        worker.execute_from_commandline()
