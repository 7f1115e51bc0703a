"""A live worker's web server for tests: started against a real broker and store."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import sqlalchemy as sa

from churnwatch import store
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker, free_port
from churnwatch.sim.demo import worker_process
from churnwatch.topics import ensure_topics
from tests.e2e.test_outbox import PARTITIONS, _customer_in, _raise
from tests.kafka_helpers import TEST_TOKEN, wait_for
from tests.pg import pg_schema

#: a token of the ``read`` role, named ``rita``
READER = "reader-token-0123456789abcdef"


class Worker:
    """A running worker's address, store, log and the alert stored before it started."""

    def __init__(
        self, port: int, engine: sa.Engine, alert_id: str, customer_id: str, log: Path
    ) -> None:
        self.port, self.engine, self.log = port, engine, log
        self.alert_id, self.customer_id = alert_id, customer_id

    @property
    def base_url(self) -> str:
        """The worker's web address."""
        return f"http://127.0.0.1:{self.port}"

    def call(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        """One request; the status, headers and body (redirects not followed)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            # a stream is not read to its end: its first bytes tell enough
            streaming = response.getheader("Content-Type", "").startswith("text/event-stream")
            data = response.read(64) if streaming else response.read()
            return response.status, dict(response.getheaders()), data
        finally:
            conn.close()

    def raw(self, request: bytes) -> bytes:
        """Send ``request`` as it is (headers no client library would send); the reply's
        status line and headers."""
        with socket_to(self.port) as sock:
            sock.sendall(request)
            reply = b""
            while b"\r\n\r\n" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return reply

    def streams(self) -> int:
        """Event streams the worker holds open."""
        reply = self.call("GET", "/api/worker", Authorization=f"Bearer {TEST_TOKEN}")
        return orjson.loads(reply[2])["streams"]

    def acknowledged_by(self) -> str | None:
        """Who acknowledged the alert stored before the worker started."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(store.alerts.c.acknowledged_by).where(
                    store.alerts.c.alert_id == self.alert_id
                )
            ).scalar_one()


@contextmanager
def socket_to(port: int) -> Iterator[socket.socket]:
    """A TCP connection to the worker's web port."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def live_worker(tmp: Path, db_url: str) -> Iterator[Worker]:
    """A worker with its web server on, over a migrated store holding one alert."""
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    customer = _customer_in(1)
    with engine.begin() as conn:
        alert, _ = _raise(conn, customer, "e1")
    port = free_port()
    log = tmp / "worker.log"
    try:
        with EmbeddedBroker() as broker:
            ensure_topics(broker.bootstrap, PARTITIONS)
            settings = Settings(
                broker=broker.bootstrap,
                db_url=db_url,
                partitions=PARTITIONS,
                web_port=port,
                web_token=TEST_TOKEN,
                web_tokens=f"rita:read:{READER}",
                web_metrics_open=False,
            )
            with worker_process(settings, broker.bootstrap, log):
                w = Worker(port, engine, alert["alert_id"], customer, log)
                bearer = {"Authorization": f"Bearer {TEST_TOKEN}"}

                def serving() -> bool:
                    try:
                        return w.call("GET", "/api/worker", **bearer)[0] == 200
                    except OSError:
                        return False

                wait_for(serving, "the web server", log)
                yield w
    finally:
        engine.dispose()


@contextmanager
def live_worker_on(store_kind: str, tmp: Path) -> Iterator[Worker]:
    """:func:`live_worker` on a SQLite file (``"sqlite"``) or a fresh PostgreSQL schema;
    on the way out, fail if a client made the worker log a traceback."""
    if store_kind == "sqlite":
        with live_worker(tmp, f"sqlite:///{tmp / 'store.db'}") as w:
            yield w
    else:
        with pg_schema() as url, live_worker(tmp, url) as w:
            yield w
    log = w.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
