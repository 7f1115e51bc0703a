"""Access control of the worker's web server, against the real worker, broker and store."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
import yaml

from churnwatch import store
from churnwatch.sim.broker import free_port
from churnwatch.streams import auth
from churnwatch.streams.web import MAX_STREAMS
from tests.e2e.test_outbox import _customer_in, _raise
from tests.kafka_helpers import TEST_TOKEN, wait_for
from tests.web_helpers import READER, Worker, live_worker

pytestmark = pytest.mark.kafka
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
ROUTES = (
    "/api/alerts",
    "/api/alerts/stream",
    "/api/cases",
    "/api/tasks",
    "/api/worker",
    "/metrics",
)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("web")
    with live_worker(tmp, f"sqlite:///{tmp / 'store.db'}") as w:
        yield w
    # every test above sent these tokens; none may reach the worker's log
    written = w.log.read_text(errors="replace")
    assert TEST_TOKEN not in written and READER not in written, "a token reached the log"


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (``/proc/net/tcp``, IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_the_web_server_binds_loopback_only(worker: Worker) -> None:
    assert _listening_addresses(worker.port) == {"127.0.0.1"}


def test_every_route_needs_a_token(worker: Worker) -> None:
    for path in (*ROUTES, f"/api/customers/{worker.customer_id}"):
        status, _, body = worker.call("GET", path)
        assert status == 401, path
        assert orjson.loads(body)["error"].startswith("a token is required")
        assert worker.call("GET", path, Authorization="Bearer wrong-token-000000000")[0] == 401
        assert worker.call("GET", path, Authorization=f"Bearer {READER}")[0] == 200, path
    # the page sends a browser without a token to the login
    status, headers, _ = worker.call("GET", "/alerts")
    assert (status, headers["Location"]) == (303, "/login")
    assert worker.call("GET", "/alerts", Authorization=f"Bearer {READER}")[0] == 200
    # Faust's own pages are not served at all
    assert worker.call("GET", "/router/", Authorization=f"Bearer {TEST_TOKEN}")[0] == 404


def test_every_documented_operation_needs_a_token(worker: Worker) -> None:
    # with CHURNWATCH_WEB_METRICS_OPEN=false only the login is open (docs/openapi.yaml)
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    with worker.engine.connect() as conn:
        case_id = conn.execute(sa.select(store.alerts.c.case_id)).scalars().first()
    ids = {"alert_id": worker.alert_id, "case_id": case_id, "customer_id": worker.customer_id}
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if operation.get("security") == []:
                continue
            status, _, _ = worker.call(method.upper(), path.format(**ids))
            # the page sends a browser to the login instead
            assert status == (303 if path == "/alerts" else 401), (method, path)
            checked += 1
    assert checked >= 12


def test_the_login_sets_a_strict_http_only_cookie_that_reads(worker: Worker) -> None:
    assert worker.call("GET", "/login?token=not-a-token-00000000")[0] == 401
    status, headers, _ = worker.call("GET", f"/login?token={READER}")
    assert (status, headers["Location"]) == (303, "/alerts")
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{auth.COOKIE}={READER};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = worker.call("GET", "/alerts", Cookie=f"{auth.COOKIE}={READER}")
    assert page[0] == 200 and b"retention worklist" in page[2]


def test_a_reader_may_not_acknowledge_and_the_name_comes_from_the_token(worker: Worker) -> None:
    path = f"/api/alerts/{worker.alert_id}/ack"
    forged = orjson.dumps({"by": "mallory"})
    json = {"Content-Type": "application/json", "Host": f"127.0.0.1:{worker.port}"}
    status, _, body = worker.call("POST", path, forged, Authorization=f"Bearer {READER}", **json)
    assert status == 403 and b"'read' role" in body
    assert worker.call("POST", path, forged, **json)[0] == 401
    assert worker.acknowledged_by() is None
    status, _, body = worker.call(
        "POST", path, forged, Authorization=f"Bearer {TEST_TOKEN}", **json
    )
    assert status == 200 and orjson.loads(body)["acknowledged_by"] == "operator"
    assert worker.acknowledged_by() == "operator"


def test_a_case_is_read_and_assigned_as_the_token_allows(worker: Worker) -> None:
    with worker.engine.connect() as conn:
        case_id = conn.execute(
            sa.select(store.alerts.c.case_id).where(store.alerts.c.alert_id == worker.alert_id)
        ).scalar_one()
    assert worker.call("GET", f"/api/cases/{case_id}")[0] == 401
    status, _, body = worker.call("GET", f"/api/cases/{case_id}", Authorization=f"Bearer {READER}")
    assert status == 200 and orjson.loads(body)["alerts"][0]["alert_id"] == worker.alert_id
    bad = worker.call("GET", "/api/cases?status=bogus", Authorization=f"Bearer {READER}")
    assert bad[0] == 400 and b"status: unknown value" in bad[2]
    path = f"/api/cases/{case_id}/assign"
    forged = orjson.dumps({"owner": "ann", "by": "mallory"})
    json = {"Content-Type": "application/json", "Host": f"127.0.0.1:{worker.port}"}
    assert worker.call("POST", path, forged, Authorization=f"Bearer {READER}", **json)[0] == 403
    acting = {"Authorization": f"Bearer {TEST_TOKEN}", **json}
    status, _, body = worker.call("POST", path, forged, **acting)
    assert status == 200 and orjson.loads(body)["assigned_by"] == "operator"
    assert worker.call("POST", path, b'{"owner": 7}', **acting)[0] == 400
    assert worker.call("POST", "/api/cases/nope/assign", forged, **acting)[0] == 404
    status, _, body = worker.call("POST", path, b'{"owner": ""}', **acting)
    assert status == 200 and orjson.loads(body)["owner"] is None


def test_a_cross_site_post_is_refused(worker: Worker) -> None:
    with worker.engine.begin() as conn:
        alert, _ = _raise(conn, _customer_in(2), "e-csrf")
    path = f"/api/alerts/{alert['alert_id']}/ack"
    host = f"127.0.0.1:{worker.port}"
    # the browser carries the act cookie to every request of the forging page
    cookie = {"Cookie": f"{auth.COOKIE}={TEST_TOKEN}", "Host": host}
    body = orjson.dumps({"by": "mallory"})
    forgeries = {
        "a form's text/plain": {"Content-Type": "text/plain", auth.CSRF_HEADER: "1"},
        "no custom header": {"Content-Type": "application/json", "Origin": f"http://{host}"},
        "another origin": {
            "Content-Type": "application/json",
            auth.CSRF_HEADER: "1",
            "Origin": "http://evil.example",
        },
        "a rebound host": {
            "Content-Type": "application/json",
            auth.CSRF_HEADER: "1",
            "Host": "evil.example",
        },
    }
    for what, headers in forgeries.items():
        status, _, reply = worker.call("POST", path, body, **{**cookie, **headers})
        assert status == 403, what
        assert b"not allowed" in reply or b"application/json" in reply or b"header" in reply
    with worker.engine.connect() as conn:
        by = conn.execute(
            sa.select(store.alerts.c.acknowledged_by).where(
                store.alerts.c.alert_id == alert["alert_id"]
            )
        ).scalar_one()
    assert by is None
    # the live page's own request goes through
    good = {"Content-Type": "application/json", auth.CSRF_HEADER: "1", "Origin": f"http://{host}"}
    status, _, reply = worker.call("POST", path, b"{}", **{**cookie, **good})
    assert status == 200 and orjson.loads(reply)["acknowledged_by"] == "operator"


def test_the_stream_is_capped_and_starts_at_most_a_week_back(worker: Worker) -> None:
    # an alert created long ago is not streamed, even when asked for
    with worker.engine.begin() as conn:
        old, _ = _raise(conn, _customer_in(3), "e-old")
        conn.execute(
            sa.update(store.alerts)
            .where(store.alerts.c.alert_id == old["alert_id"])
            .values(created_at=store.utcnow() - timedelta(days=30))
        )
    since = (store.utcnow() - timedelta(days=60)).isoformat()
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
    conn.request(
        "GET",
        f"/api/alerts/stream?since={since.replace('+', '%2B')}",
        headers={"Authorization": f"Bearer {READER}"},
    )
    response = conn.getresponse()
    events = []
    while (line := response.readline()) != b": keep-alive\n":
        if line.startswith(b"data: "):
            events.append(orjson.loads(line[6:])["alert_id"])
    conn.close()
    assert old["alert_id"] not in events and worker.alert_id in events
    # at most MAX_STREAMS at once; one more is turned away
    wait_for(lambda: worker.streams() == 0, "earlier streams to end", Path("/dev/null"))
    held = []
    try:
        for _ in range(MAX_STREAMS):
            c = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
            c.request("GET", "/api/alerts/stream", headers={"Authorization": f"Bearer {READER}"})
            assert c.getresponse().status == 200
            held.append(c)
        assert worker.call("GET", "/api/alerts/stream", Authorization=f"Bearer {READER}")[0] == 503
    finally:
        for c in held:
            c.close()
    wait_for(lambda: worker.streams() == 0, "the streams to end", Path("/dev/null"))


def test_the_worker_refuses_a_web_server_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNWATCH_")}
    env |= {"CHURNWATCH_WEB_PORT": str(free_port()), "CHURNWATCH_DB_URL": "sqlite://"}
    done = subprocess.run(
        [sys.executable, "-m", "churnwatch", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "no token is set: set CHURNWATCH_WEB_TOKEN" in done.stderr
