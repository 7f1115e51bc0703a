"""The worker's web views: the live alerts page, its JSON API and Prometheus metrics.

Routes (on ``CHURNWATCH_WEB_PORT``):

- ``GET /alerts``: the live alerts page (``live.html``);
- ``GET /api/alerts?tier=&reason=&status=&limit=``: alerts, most value at risk first, with
  their task's action;
- ``GET /api/alerts/stream?since=``: server-sent events, one ``alert`` event per new alert;
- ``POST /api/alerts/{alert_id}/ack``: acknowledge an alert (body ``{"by": "name"}``);
- ``GET /api/tasks?status=&limit=``: newest win-back tasks;
- ``GET /api/customers/{customer_id}``: stage, tier, score, feature row, recent alerts;
- ``GET /api/worker``: this worker's app id and the input partitions it holds;
- ``GET /metrics``: Prometheus text format.

SQL runs in a thread so that the agents' event loop never waits on the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from typing import Any, TypeVar

import faust
import orjson
from aiohttp import web as aiohttp_web
from faust.web import Request, Response
from sqlalchemy.engine import Engine

from churnwatch import alert_feed
from churnwatch.alert_feed import AlertFilter, FeedCursor
from churnwatch.events import PURCHASES
from churnwatch.metrics import CONTENT_TYPE_LATEST, WorkerMetrics
from churnwatch.store import utcnow

T = TypeVar("T")
#: how often an open stream polls the store for new alerts
POLL_S = 0.5
#: a stream ends after this long and the browser reconnects (``Last-Event-ID``),
#: so that an open page never holds up a worker's shutdown
STREAM_LIFETIME_S = 15.0
JSON = "application/json"


def _query_list(request: Request, name: str) -> tuple[str, ...]:
    """``?tier=high&tier=potential`` or ``?tier=high,potential`` as a tuple."""
    values: list[str] = []
    for raw in request.query.getall(name, []):
        values.extend(v for v in raw.split(",") if v)
    return tuple(values)


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise faust.web.exceptions.ParseError(f"since: not an ISO-8601 time: {raw!r}") from None
    if moment.tzinfo is None:
        raise faust.web.exceptions.ParseError(f"since: needs a UTC offset: {raw!r}")
    return moment


def _filter(request: Request) -> AlertFilter:
    try:
        return AlertFilter(
            tiers=_query_list(request, "tier"),
            reasons=_query_list(request, "reason"),
            status=request.query.get("status") or None,
            limit=int(request.query.get("limit", 200)),
        )
    except ValueError as exc:
        raise faust.web.exceptions.ParseError(str(exc)) from None


def register_web(app: faust.App, engine: Engine, metrics: WorkerMetrics) -> None:
    """Add the live page, the JSON API and ``/metrics`` to ``app``'s web server."""
    page = files("churnwatch.streams").joinpath("live.html").read_text(encoding="utf-8")

    async def in_thread(work: Callable[..., T], *args: Any, write: bool = False) -> T:
        """``work(conn, *args)`` in a thread, in a transaction when it writes."""

        def run() -> T:
            with engine.begin() if write else engine.connect() as conn:
                return work(conn, *args)

        return await asyncio.to_thread(run)

    def reply(view: faust.web.View, value: Any, status: int = 200) -> Response:
        return view.bytes(orjson.dumps(value), content_type=JSON, status=status)

    @app.page("/alerts")
    class LivePage(faust.web.View):
        async def get(self, request: Request) -> Response:
            return self.html(page)

    @app.page("/api/alerts")
    class Alerts(faust.web.View):
        async def get(self, request: Request) -> Response:
            flt = _filter(request)
            rows = await in_thread(alert_feed.list_alerts, flt)
            return reply(self, rows)

    @app.page("/api/alerts/stream")
    class AlertStream(faust.web.View):
        async def get(self, request: Request) -> aiohttp_web.StreamResponse:
            flt = _filter(request)
            # a reconnecting browser sends the id of the last event it received
            since = _since(request.headers.get("Last-Event-ID") or request.query.get("since"))
            cursor = FeedCursor(since=since or utcnow())
            response = aiohttp_web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
            await response.write(b"retry: 1000\n\n")
            ends = time.monotonic() + STREAM_LIFETIME_S
            try:
                while time.monotonic() < ends:
                    rows = await in_thread(alert_feed.alerts_since, cursor.poll_from, flt)
                    for row in cursor.take(rows):
                        stamp = row["created_at"].isoformat()
                        message = b"id: %s\nevent: alert\ndata: %s\n\n" % (
                            stamp.encode(),
                            orjson.dumps(row),
                        )
                        await response.write(message)
                    await response.write(b": keep-alive\n\n")
                    await asyncio.sleep(POLL_S)
            except ConnectionResetError:
                pass  # the page was closed
            return response

    @app.page("/api/alerts/{alert_id}/ack")
    class Acknowledge(faust.web.View):
        async def post(self, request: Request, alert_id: str) -> Response:
            body = await request.read()
            try:
                by = str((orjson.loads(body) if body else {}).get("by") or "live page")
            except (orjson.JSONDecodeError, AttributeError):
                return reply(self, {"error": 'body must be JSON like {"by": "name"}'}, 400)
            now = utcnow()
            ack = await in_thread(alert_feed.acknowledge, alert_id, by[:200], now, write=True)
            if ack is None:
                return reply(self, {"error": f"no alert {alert_id!r}"}, 404)
            return reply(self, ack)

    @app.page("/api/tasks")
    class Tasks(faust.web.View):
        async def get(self, request: Request) -> Response:
            status = request.query.get("status") or None
            try:
                limit = int(request.query.get("limit", 200))
                rows = await in_thread(alert_feed.list_tasks, status, limit)
            except ValueError as exc:
                return reply(self, {"error": str(exc)}, 400)
            return reply(self, rows)

    @app.page("/api/customers/{customer_id}")
    class Customer(faust.web.View):
        async def get(self, request: Request, customer_id: str) -> Response:
            view = await in_thread(alert_feed.customer_view, customer_id)
            if view is None:
                return reply(self, {"error": f"no customer {customer_id!r}"}, 404)
            return reply(self, view)

    @app.page("/api/worker")
    class Worker(faust.web.View):
        async def get(self, request: Request) -> Response:
            assigned = app.consumer.assignment() if app.consumer else set()
            # input topics are co-partitioned: one topic's partitions name them all
            partitions = sorted({tp.partition for tp in assigned if tp.topic == PURCHASES})
            return reply(self, {"app_id": app.conf.id, "partitions": partitions})

    @app.page("/metrics")
    class Metrics(faust.web.View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset in ``content_type``; Prometheus's type carries one
            return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
