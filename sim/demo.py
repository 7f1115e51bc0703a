"""``churnwatch demo``: broker, worker and simulator together on one machine.

The embedded broker keeps topics in memory only, so the demo starts each run on
a fresh SQLite file (``churnwatch-data/demo.db``) unless ``CHURNWATCH_DB_URL``
names another store; counts are always taken as differences over the run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from churnwatch import store
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import DEFAULT_DATA_DIR, Settings
from churnwatch.sim.broker import EmbeddedBroker, die_with_parent
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import SimRecord, Simulation, customers_for, records
from churnwatch.store import Engine
from churnwatch.times import clock_offset_s, utcnow
from churnwatch.topics import DEAD_LETTERS, ensure_topics_for


class DemoError(RuntimeError):
    """The demo could not finish (the worker stalled or died)."""


@dataclass(frozen=True)
class DemoSummary:
    """The closing JSON object of ``churnwatch demo --json`` (docs/contract.md)."""

    events_in: int
    events_stored: int
    dead_letters: int
    alerts: int
    winback_tasks: int
    #: tasks whose customer bought again within the window, during the run
    won_back: int
    seconds: float
    events_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


class TopicCounter(threading.Thread):
    """Counts every record on a topic, from the beginning, in the background.

    It assigns partitions itself (no consumer group), so there is no group
    join to wait for, and it does not rely on the broker's end offsets.
    """

    def __init__(self, bootstrap: str, topic: str, client: Mapping[str, Any] | None = None) -> None:
        super().__init__(daemon=True, name=f"count-{topic}")
        self.bootstrap, self.topic = bootstrap, topic
        self.client = dict(client or {})
        self.count = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, **self.client
        )
        try:
            parts = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            while not self._stop_event.is_set():
                for batch in consumer.poll(timeout_ms=200).values():
                    self.count += len(batch)
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def _paced(
    items: Iterator[SimRecord],
    on_live: Callable[[int], None] | None,
    alive: Callable[[], bool],
) -> Iterator[SimRecord]:
    """Hold back each record until the wall clock reaches its event time.

    ``on_live`` is told once, with the number of records before it, when the
    first record has to wait: the history is played and the rest comes live.
    While waiting, a worker that is no longer ``alive`` ends the demo.
    """
    for sent, record in enumerate(items):
        while record.at is not None and (ahead := (record.at - utcnow()).total_seconds()) > 0:
            if on_live is not None:
                on_live(sent)
                on_live = None
            if not alive():
                raise DemoError("the worker stopped while the demo ran live")
            time.sleep(min(ahead, 1.0))
        yield record


@contextmanager
def worker_process(
    settings: Settings, bootstrap: str, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``churnwatch worker`` as a child process for the duration of the block."""
    env = {**os.environ, **settings.to_env(), "CHURNWATCH_BROKER": bootstrap}
    if not settings.clock_offset_s:
        # the worker reads this process's clock, unless the settings move it themselves
        env["CHURNWATCH_CLOCK_OFFSET_S"] = repr(clock_offset_s())
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "churnwatch", "worker"],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the worker
            preexec_fn=die_with_parent,  # and a demo killed outright takes it along
        )
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


#: the example CRM beside the package's folders, when churnwatch runs from its repository
CRM_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "crm_client.py"


@contextmanager
def _crm_example(bootstrap: str, log_path: Path) -> Iterator[None]:
    """Run the example CRM, playing the customers its actions truly win back, if it is
    there (a checkout of the repository); say so when it is not."""
    if not CRM_EXAMPLE.exists():
        print(f"no example CRM at {CRM_EXAMPLE}: win-back tasks stay unworked", file=sys.stderr)
        yield
        return
    command = [sys.executable, str(CRM_EXAMPLE), "--broker", bootstrap, "--play-truth"]
    with log_path.open("ab") as log:
        crm = subprocess.Popen(command, stdout=log, stderr=log, preexec_fn=die_with_parent)
        try:
            yield
        finally:
            crm.terminate()
            try:
                crm.wait(timeout=10)
            except subprocess.TimeoutExpired:
                crm.kill()
                crm.wait()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM stops the demo as Ctrl-C does: its children stop with it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _won_back(engine: Engine) -> int:
    with engine.connect() as conn:
        return store.count_tasks(conn, "won_back")


def run_demo(
    settings: Settings,
    *,
    events: int | None,
    days: int = 365,
    customers: int | None = None,
    seed: int = 7,
    bad_share: float = 0.01,
    rate: float | None = None,
    stall_timeout_s: float = 60.0,
    on_record: Callable[[SimRecord], None] | None = None,
    on_live: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Run the whole system; with ``events`` stop once all of them are processed.

    Without ``events`` the history is played, ``on_live`` is told how many
    records it held, and customers go on with their habits at the pace of the
    clock until the user interrupts (``KeyboardInterrupt``).
    """
    data_dir = DEFAULT_DATA_DIR
    if "CHURNWATCH_DB_URL" not in os.environ:
        demo_db = data_dir / "demo.db"
        for stale in data_dir.glob("demo.db*"):
            stale.unlink()
        settings = replace(settings, db_url=f"sqlite:///{demo_db}")
    if "CHURNWATCH_ALLOWED_LATENESS_S" not in os.environ:
        # The demo plays a year of history in a minute, so its topics drift apart
        # by weeks of event time; allow the most lateness the state supports.
        settings = replace(settings, allowed_lateness_s=KEEP_DAYS * 86400.0)
    engine = store.make_engine(settings.db_url)
    store.upgrade(engine)

    now = utcnow().replace(microsecond=0)
    start = now - timedelta(days=days)
    if customers is None:
        customers = customers_for(events or 20_000, days)
    sim = Simulation(customers, start, now, seed=seed)
    if events is None:
        stream = records(sim, bad_share=bad_share, until=now + timedelta(days=3650))
    else:
        stream = records(sim, bad_share=bad_share, limit=events)

    with ExitStack() as stack:
        stack.enter_context(_sigterm_as_interrupt())
        bootstrap = settings.broker
        if bootstrap is None:
            broker = EmbeddedBroker(log_path=data_dir / "broker.log")
            bootstrap = stack.enter_context(broker).bootstrap
        ensure_topics_for(settings, bootstrap)
        client = settings.kafka_security.client_config()
        stored_before = store.count_rows(engine, store.events)
        alerts_before = store.count_rows(engine, store.alerts)
        tasks_before = store.count_rows(engine, store.winback_tasks)
        won_before = _won_back(engine)
        dead = TopicCounter(bootstrap, DEAD_LETTERS, client)
        dead.start()
        stack.callback(dead.stop)
        worker_log = data_dir / "worker.log"
        worker = stack.enter_context(worker_process(settings, bootstrap, worker_log))
        if events is None:
            stream = _paced(stream, on_live, lambda: worker.poll() is None)
            stack.enter_context(_crm_example(bootstrap, data_dir / "crm.log"))

        started = time.monotonic()
        counts = produce(stream, bootstrap, rate=rate, on_record=on_record, client=client)
        events_in = counts.total()

        def stored() -> int:
            return store.count_rows(engine, store.events) - stored_before

        done, last_progress, last_seen = stored() + dead.count, time.monotonic(), -1
        while done < events_in:
            if worker.poll() is not None:
                raise DemoError(f"worker exited with code {worker.returncode} (see {worker_log})")
            if done != last_seen:
                last_seen, last_progress = done, time.monotonic()
            elif time.monotonic() - last_progress > stall_timeout_s:
                raise DemoError(
                    f"worker stalled: {done} of {events_in} events accounted for after "
                    f"{stall_timeout_s:.0f} s without progress (see {worker_log})"
                )
            time.sleep(0.1)
            done = stored() + dead.count
        seconds = time.monotonic() - started
        return DemoSummary(
            events_in=events_in,
            events_stored=stored(),
            dead_letters=dead.count,
            alerts=store.count_rows(engine, store.alerts) - alerts_before,
            winback_tasks=store.count_rows(engine, store.winback_tasks) - tasks_before,
            won_back=_won_back(engine) - won_before,
            seconds=round(seconds, 3),
            events_per_s=round(events_in / seconds, 1) if seconds > 0 else 0.0,
        )


def check_port(host: str, port: int) -> None:
    """Raise :class:`DemoError` when the web server could not listen on ``host:port``."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # as the web server binds: a port left in TIME_WAIT is free to take
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DemoError(
                f"port {port} on {host} is taken ({exc.strerror}): another demo or worker may "
                "be running; stop it, or choose another port with CHURNWATCH_WEB_PORT"
            ) from None
