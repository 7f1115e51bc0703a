"""Running the Faust worker: store migrations, topics, then the app."""

from __future__ import annotations

from contextlib import ExitStack

import faust
from churnwatch.streams.app import create_app
from churnwatch.streams.web import guard_for

from churnwatch import store
from churnwatch.broker import EmbeddedBroker
from churnwatch.settings import DEFAULT_DATA_DIR, Settings
from churnwatch.topics import ensure_topics_for


def run_worker(settings: Settings, log_level: str = "warning") -> None:
    """Run the worker until it is stopped (SIGTERM or Ctrl-C).

    Without ``CHURNWATCH_BROKER`` an embedded broker is started first and
    stopped with the worker.
    """
    if settings.web_port > 0:
        guard_for(settings)  # no web server without a token: refuse before anything starts
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
        faust.Worker(app, loglevel=log_level, quiet=True).execute_from_commandline()
