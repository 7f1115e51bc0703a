"""The web edge answers client input with a 4xx and a readable JSON error, never a 500.

Against the real worker, broker and store, on SQLite and on PostgreSQL (which
refuses a NUL in text, where SQLite stores it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
import yaml

from churnwatch import store
from churnwatch.alerts.config import LEVELS
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import REASONS
from churnwatch.streams import auth
from tests.kafka_helpers import TEST_TOKEN, wait_for
from tests.web_helpers import READER, Worker, live_worker_on

pytestmark = pytest.mark.kafka
ACT = {"Authorization": f"Bearer {TEST_TOKEN}"}
READ = {"Authorization": f"Bearer {READER}"}
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def worker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp(f"edge-{request.param}")
    with live_worker_on(request.param, tmp) as w:
        yield w


def _json_error(reply: tuple[int, dict[str, str], bytes]) -> dict:
    status, headers, body = reply
    assert headers["Content-Type"].startswith("application/json"), (status, body)
    error = orjson.loads(body)
    assert isinstance(error["error"], str) and error["error"]
    return error


def test_a_token_that_is_not_utf8_is_refused(worker: Worker) -> None:
    for header in (
        b"Authorization: Bearer \xff\xfe-not-utf8-0123456789",
        b"Cookie: " + auth.COOKIE.encode() + b"=\xff\xfe-not-utf8-0123456789",
    ):
        request = b"GET /api/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n\r\n"
        reply = worker.raw(request)
        assert reply.startswith(b"HTTP/1.1 401 "), reply[:200]
    # a valid token, and a reconnecting stream's time that is not UTF-8
    request = (
        b"GET /api/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + TEST_TOKEN.encode()
        + b"\r\nLast-Event-ID: \xff\xfe2026\r\n\r\n"
    )
    reply = worker.raw(request)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]


def _nul_requests(worker: Worker) -> list[tuple[str, str]]:
    """``(method, path)``: each parameter of each documented operation with a NUL in it."""
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    ids = {"alert_id": worker.alert_id, "case_id": "c", "customer_id": worker.customer_id}
    out = []
    for template, item in spec["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = spec["components"]["parameters"][parameter["$ref"].split("/")[-1]]
                name, where = parameter["name"], parameter["in"]
                if where == "path":
                    out.append((method.upper(), template.format(**{**ids, name: "a%00b"})))
                elif where == "query":
                    out.append((method.upper(), f"{template.format(**ids)}?{name}=a%00b"))
    return out


def test_a_nul_in_any_path_or_query_parameter_is_a_bad_request(worker: Worker) -> None:
    post = {**ACT, "Content-Type": "application/json", "Host": f"127.0.0.1:{worker.port}"}
    sent = _nul_requests(worker)
    # a parameter no route reads, and a NUL in a key
    sent += [("GET", "/api/worker?x=a%00b"), ("GET", "/api/alerts?a%00b=1")]
    assert len(sent) >= 25  # every path and query parameter of the document
    for method, path in sent:
        reply = worker.call(method, path, b"{}" if method == "POST" else None, **post)
        assert reply[0] == 400, (method, path, reply)
        assert "NUL" in _json_error(reply)["error"], path


def test_an_owner_with_a_nul_is_a_bad_request(worker: Worker) -> None:
    post = {**ACT, "Content-Type": "application/json", "Host": f"127.0.0.1:{worker.port}"}
    with worker.engine.connect() as conn:
        case_id = conn.execute(sa.select(store.alerts.c.case_id)).scalars().first()
    body = orjson.dumps({"owner": "a\x00b"})
    reply = worker.call("POST", f"/api/cases/{case_id}/assign", body, **post)
    assert reply[0] == 400 and "NUL" in _json_error(reply)["error"], reply


def test_faust_s_own_index_is_closed(worker: Worker) -> None:
    for headers in ({}, ACT):
        for path in ("/", "/router/", "/table/", "/graph/"):
            reply = worker.call("GET", path, **headers)
            assert reply[0] == 404, (path, reply)
            _json_error(reply)


@pytest.mark.parametrize(
    ("path", "parameter", "allowed"),
    [
        ("/api/alerts?status=bogus", "status", ("open", "acknowledged")),
        ("/api/alerts?tier=nosuch", "tier", TIERS),
        ("/api/alerts?reason=nosuch", "reason", REASONS),
        ("/api/alerts/stream?tier=nosuch", "tier", TIERS),
        ("/api/cases?status=bogus", "status", ("open", "closed", "all")),
        ("/api/cases?tier=nosuch", "tier", TIERS),
        ("/api/cases?reason=high,nosuch", "reason", REASONS),
        ("/api/cases?level=nosuch", "level", LEVELS),
        ("/api/tasks?status=bogus", "status", ("open", "in_progress", "lost")),
    ],
)
def test_an_unknown_filter_value_names_the_parameter_and_the_allowed_values(
    worker: Worker, path: str, parameter: str, allowed: tuple[str, ...]
) -> None:
    reply = worker.call("GET", path, **READ)
    assert reply[0] == 400, reply
    error = _json_error(reply)
    assert error["parameter"] == parameter
    assert set(allowed) <= set(error["allowed"])
    assert error["error"].startswith(f"{parameter}: ")
    assert all(value in error["error"] for value in allowed)


@pytest.mark.parametrize(
    ("path", "parameter", "takes"),
    [
        ("/api/alerts?teir=high", "teir", ("tier", "reason", "status", "limit")),
        ("/api/cases?tier=high&regoin=north", "regoin", ("region", "owner", "q")),
        ("/api/tasks?limit=5&order=asc", "order", ("status", "limit")),
        ("/api/worker?verbose=1", "verbose", ()),
    ],
)
def test_a_parameter_the_route_does_not_take_is_named(
    worker: Worker, path: str, parameter: str, takes: tuple[str, ...]
) -> None:
    reply = worker.call("GET", path, **READ)
    assert reply[0] == 400, reply
    error = _json_error(reply)
    assert error["parameter"] == parameter and set(takes) <= set(error["allowed"])
    assert error["error"].startswith(f"{parameter}: not a parameter of this route")


@pytest.mark.parametrize(
    "path",
    [
        "/api/alerts?limit=many",
        "/api/alerts?limit=0",
        "/api/cases?limit=100000",
        "/api/tasks?limit=x",
        "/api/alerts/stream?limit=-1",
        "/api/alerts/stream?since=yesterday",
        "/api/alerts/stream?since=2026-01-01T00:00:00",
    ],
)
def test_a_malformed_number_or_time_names_the_parameter(worker: Worker, path: str) -> None:
    reply = worker.call("GET", path, **READ)
    assert reply[0] == 400, reply
    parameter = path.split("?")[1].split("=")[0]
    assert _json_error(reply)["error"].startswith(f"{parameter}: ")


@pytest.mark.parametrize(
    "since",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01T00:00:00-23:59"],
)
def test_a_stream_from_any_valid_time_starts(worker: Worker, since: str) -> None:
    status, headers, body = worker.call(
        "GET", f"/api/alerts/stream?since={since.replace('+', '%2B')}", **READ
    )
    assert status == 200 and headers["Content-Type"] == "text/event-stream", body
    assert body.startswith(b"retry: 1000")


def test_a_huge_header_is_refused_with_one_warning_line(worker: Worker) -> None:
    request = (
        b"GET /api/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    reply = worker.raw(request)
    assert reply.split(b" ")[1].startswith(b"4"), reply[:200]
    # one warning line (the fixture checks that no traceback reached the log)
    wait_for(
        lambda: "WARNING" in _refusals(worker) and "LineTooLong" in _refusals(worker),
        "the refusal's warning",
        worker.log,
    )
    assert len(_refusals(worker).splitlines()) == 1, _refusals(worker)
    assert worker.call("GET", "/api/worker", **ACT)[0] == 200


def _refusals(worker: Worker) -> str:
    log = worker.log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in log if "refused a malformed request" in line)
