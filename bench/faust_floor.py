"""The bare Faust ceiling: a Faust agent that only takes and decodes the input.

Run by :mod:`bench.pipeline` in a child process, against the same broker and
records as the worker, with the worker's batch settings. The agent reads
every input topic in batches (``take_events``, as the worker's intake does),
decodes each value with orjson and does nothing else; it writes the seconds
from its first batch to its last to ``--out`` and stops. It runs on the
worker's event loop and fetch wait (``CHURNWATCH_LOOP``,
``CHURNWATCH_FETCH_MAX_WAIT_MS``), so that the ratio compares like with like.

    python -m bench.faust_floor --broker HOST:PORT --events N --out FILE
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import faust
import orjson

from churnwatch.events import INPUT_TOPICS
from churnwatch.gc_tuning import tune_for_long_run
from churnwatch.settings import Settings
from churnwatch.streams.app import app_options
from churnwatch.streams.consumer import FetchWaitApp
from churnwatch.streams.worker import use_loop


def floor_app(bootstrap: str, expected: int, out: Path) -> faust.App:
    """A Faust app that decodes ``expected`` input records, then writes its times to ``out``."""
    env = Settings.from_env()
    settings = replace(
        Settings(),
        app_id=f"faust-floor-{time.time_ns()}",
        web_port=0,
        fetch_max_wait_ms=env.fetch_max_wait_ms,
        loop=env.loop,
    )
    use_loop(settings.loop)
    app = FetchWaitApp(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        **app_options(settings, bootstrap),
    )
    inputs = app.topic(*INPUT_TOPICS, key_serializer="raw", value_serializer="raw")

    @app.agent(inputs, name="floor")
    async def floor(stream: faust.StreamT) -> None:
        seen, first, cpu_first = 0, None, 0.0
        async for events in stream.take_events(settings.batch_size, settings.batch_within_s):
            if first is None:
                first, cpu_first = time.perf_counter(), time.process_time()
            for event in events:
                # the bad records are decoded too, and fail, as in the worker
                with contextlib.suppress(orjson.JSONDecodeError):
                    orjson.loads(event.message.value)
            seen += len(events)
            if seen >= expected:
                # wall seconds, then this process's CPU seconds, over the same stretch
                out.write_text(f"{time.perf_counter() - first} {time.process_time() - cpu_first}")
                # the worker's own way out: a graceful stop, as on Ctrl-C
                os.kill(os.getpid(), signal.SIGTERM)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="bootstrap HOST:PORT")
    parser.add_argument("--events", type=int, required=True, help="records to take")
    parser.add_argument(
        "--out", type=Path, required=True, help="file for the wall and CPU seconds taken"
    )
    args = parser.parse_args()
    app = floor_app(args.broker, args.events, args.out)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    tune_for_long_run(Settings.from_env().gc_threshold)  # as the worker does
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
