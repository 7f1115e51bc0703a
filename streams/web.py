"""The worker's web views: the retention worklist, its JSON API and Prometheus metrics.

Routes (on ``CHURNWATCH_WEB_PORT``):

- ``GET /alerts``: the retention worklist, one row per case (``live.html``);
- ``GET /api/alerts?tier=&reason=&status=&limit=``: alerts, most value at risk first, with
  their task's action;
- ``GET /api/alerts/stream?since=&tier=&reason=&status=&limit=``: server-sent events, one
  ``alert`` event per new alert;
- ``POST /api/alerts/{alert_id}/ack``: acknowledge an alert, as the caller's identity;
- ``GET /api/cases?status=&tier=&reason=&level=&region=&industry=&channel=&segment=&q=&limit=``:
  one row per case (open by default), most value at risk first, with counts for the filters;
- ``GET /api/cases/{case_id}``: a case's alerts, oldest first, with their tasks;
- ``POST /api/cases/{case_id}/assign``: ``{"owner": "name"}`` gives the case to someone
  (``""``: to nobody), as the caller's identity;
- ``GET /api/tasks?status=&limit=``: newest win-back tasks;
- ``GET /api/customers/{customer_id}``: stage, tier, score, feature row, recent alerts;
- ``GET /api/worker``: this worker's app id, the input partitions it holds, open streams;
- ``GET /health``: 200 while the worker makes progress, 503 when it is stuck
  (:mod:`churnwatch.streams.health`);
- ``GET /metrics``: Prometheus text format;
- ``GET /login``, ``POST /login``: a browser's login (``?token=`` or a form) to a cookie.

Every route but ``/metrics`` and ``/health`` (open unless
``CHURNWATCH_WEB_METRICS_OPEN=false``) and the login needs a token
(:mod:`churnwatch.streams.auth`): ``read`` for the ``GET`` routes, ``act`` for
the acknowledgement and the assignment.

Client input never gets a 500: a NUL in a path or query is a 400; a query
parameter the route does not take, an unknown filter value or a malformed
number or time is a 400 naming the parameter (and the values it takes), each
as JSON ``{"error": ...}`` (:func:`edge_middleware`,
:class:`~churnwatch.streams.feed.BadParameter`). Faust's own pages, its index
at ``/`` among them, answer 404, and a malformed request is one warning line
in the log (:class:`QuietRefusals`). ``docs/openapi.yaml`` is the routes'
contract; ``tests/unit/test_openapi.py`` fails when it and this module differ.

SQL runs on a small pool and executor of the web views' own, so that neither
the agents' event loop nor their store connections wait on a crowd of browsers.

Each route is a view class of this module; :data:`ROUTE_TABLE` lists them, and
each takes what it needs (the guard, that pool, the metrics ...) from the one
:class:`WebContext` that :func:`register_web` builds for the worker's web server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Any, ClassVar, TypeVar, cast

import faust
import orjson
from aiohttp import web as aiohttp_web
from aiohttp.http_exceptions import HttpProcessingError
from faust.web import Request, Response
from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.events import PURCHASES
from churnwatch.features.segments import SEGMENTS
from churnwatch.settings import Settings
from churnwatch.store import utcnow
from churnwatch.streams import auth
from churnwatch.streams import feed as alert_feed
from churnwatch.streams.feed import AlertFilter, BadParameter, CaseFilter, FeedCursor
from churnwatch.streams.health import Health
from churnwatch.streams.metrics import CONTENT_TYPE_LATEST, WorkerMetrics

T = TypeVar("T")
#: how often an open stream polls the store for new alerts
POLL_S = 0.5
#: a stream ends after this long and the browser reconnects (``Last-Event-ID``),
#: so that an open page never holds up a worker's shutdown
STREAM_LIFETIME_S = 15.0
JSON = "application/json"
#: most event streams open at once; more get 503 and the browser retries
MAX_STREAMS = 16
#: furthest back a stream starts
MAX_SINCE = timedelta(days=7)
#: connections and threads of the web views (beside the agents' own)
WEB_POOL = 4
_LOGIN_FORM = (
    b"<!doctype html><meta charset=utf-8><title>churnwatch \xc2\xb7 login</title>"
    b'<form method=post action=/login style="font:14px system-ui;margin:3em">'
    b"<label>Token <input name=token type=password autofocus></label> "
    b"<button>Log in</button></form>"
)


class WebSetupError(ValueError):
    """The web server is on but its access control is not configured."""


def guard_for(settings: Settings) -> auth.Guard:
    """The access control of ``settings``; refuses a web server without a token."""
    credentials = settings.web_credentials
    if not credentials:
        raise WebSetupError(
            "the worker's web server is on (CHURNWATCH_WEB_PORT="
            f"{settings.web_port}) but no token is set: set CHURNWATCH_WEB_TOKEN "
            "(or CHURNWATCH_WEB_TOKEN_FILE, CHURNWATCH_WEB_TOKENS), or turn the web "
            "server off with CHURNWATCH_WEB_PORT=0; see docs/security.md"
        )
    hosts = (settings.web_allowed_hosts or "").split(",")
    return auth.Guard(
        credentials,
        allowed_hosts=auth.allowed_hosts(hosts, settings.web_host),
        user_header=settings.web_user_header,
    )


def _query_list(request: Request, name: str) -> tuple[str, ...]:
    """``?tier=high&tier=potential`` or ``?tier=high,potential`` as a tuple."""
    values: list[str] = []
    # aiohttp hands Faust a multi-dict; Faust types it as a plain mapping
    for raw in cast(Any, request.query).getall(name, []):
        values.extend(v for v in raw.split(",") if v)
    return tuple(values)


def _limit(request: Request) -> int:
    """``?limit=``, 200 when absent; its range is the filter's to check."""
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return 200
    try:
        return int(raw)
    except ValueError:
        raise BadParameter("limit", f"not a whole number: {raw[:50]!r}") from None


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadParameter("since", f"not an ISO-8601 time: {raw[:50]!r}") from None
    if moment.tzinfo is None:
        raise BadParameter("since", f"needs a UTC offset: {raw[:50]!r}")
    return moment


#: the query parameters of the alert list and stream (:func:`_filter`)
ALERT_QUERY = ("tier", "reason", "status", "limit")
#: the query parameters of the case list (:func:`_case_filter`)
CASE_QUERY = ("status", "tier", "reason", "level", *SEGMENTS, "owner", "q", "limit")
#: the page keeps its filters in its address (live.html) and passes them on to the case list
PAGE_QUERY = tuple(name for name in CASE_QUERY if name != "limit")


def _filter(request: Request) -> AlertFilter:
    return AlertFilter(
        tiers=_query_list(request, "tier"),
        reasons=_query_list(request, "reason"),
        status=request.query.get("status") or None,
        limit=_limit(request),
    )


def _case_filter(request: Request) -> CaseFilter:
    return CaseFilter(
        status=request.query.get("status") or "open",
        tiers=_query_list(request, "tier"),
        reasons=_query_list(request, "reason"),
        levels=_query_list(request, "level"),
        segments=tuple((d, v) for d in SEGMENTS for v in _query_list(request, d)),
        owners=_query_list(request, "owner"),
        search=request.query.get("q", ""),
        limit=_limit(request),
    )


def _error(status: int, message: str, **more: Any) -> aiohttp_web.Response:
    """A JSON error answer: ``{"error": message, ...more}``."""
    return aiohttp_web.Response(
        body=orjson.dumps({"error": message, **more}), status=status, content_type=JSON
    )


def _nul_in(request: aiohttp_web.Request) -> str | None:
    """Where a request carries a NUL character (``path`` or ``query``), or ``None``.

    No stored text holds a NUL (PostgreSQL refuses one outright), so no route can
    want one; refusing it at the edge keeps it away from SQL.
    """
    if "\x00" in request.path:
        return "path"
    if any("\x00" in key or "\x00" in value for key, value in request.query.items()):
        return "query"
    return None


#: where :func:`register_web` records its routes on the aiohttp app: each path
#: and the query parameters it takes (tests/unit/test_openapi.py reads them)
ROUTES = aiohttp_web.AppKey("churnwatch_routes", dict)


def edge_middleware(
    ours: dict[str, tuple[str, ...]],
) -> Callable[[aiohttp_web.Request, Any], Awaitable[aiohttp_web.StreamResponse]]:
    """The checks every request passes before a view: NULs, routes and parameters, JSON 404s.

    ``ours`` maps the paths :func:`register_web` serves to the query parameters
    each takes. Any other route on the server (Faust's index page at ``/``, say)
    answers 404, so that nothing is served without the token check; a parameter
    the route does not take is a 400, so that a misspelt filter (``?teir=high``)
    is not silently ignored.
    """

    @aiohttp_web.middleware
    async def edge(request: aiohttp_web.Request, handler: Any) -> aiohttp_web.StreamResponse:
        if where := _nul_in(request):
            return _error(400, f"a NUL character is not allowed in the {where}")
        resource = request.match_info.route.resource
        if resource is not None:
            if resource.canonical not in ours:
                return _error(404, f"no such route: {request.path[:200]}")
            takes = ours[resource.canonical]
            if unknown := sorted(set(request.query) - set(takes)):
                listed = ", ".join(takes) or "no query parameters"
                return _error(
                    400,
                    f"{unknown[0][:50]}: not a parameter of this route; it takes {listed}",
                    parameter=unknown[0][:50],
                    allowed=list(takes),
                )
        try:
            return cast(aiohttp_web.StreamResponse, await handler(request))
        except aiohttp_web.HTTPNotFound:
            return _error(404, f"no such route: {request.path[:200]}")
        except aiohttp_web.HTTPMethodNotAllowed as exc:
            allow = ", ".join(sorted(exc.allowed_methods))
            answer = _error(405, f"{request.method} is not allowed here; use {allow}")
            answer.headers["Allow"] = allow
            return answer

    return edge


class QuietRefusals(logging.Filter):
    """Turns aiohttp's ERROR and traceback for a malformed request into one WARNING line.

    A client that sends a 100 KB header or a broken request line gets its 400
    (431) from aiohttp; that is the client's mistake, not the worker's, and is
    not worth a traceback. Nothing of the request itself is logged: it may hold a token.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a client's parse error in place; let every other record through as it is."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and (exc.code or 400) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "refused a malformed request from %s: %s %s"
            record.args = (remote, exc.code or 400, type(exc).__name__)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_refusals() -> None:
    """Install :class:`QuietRefusals` on aiohttp's server logger, once."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, QuietRefusals) for f in logger.filters):
        logger.addFilter(QuietRefusals())


@dataclass
class WebContext:
    """What the web views need, one per worker's web server (:func:`register_web`)."""

    app: faust.App
    settings: Settings
    guard: auth.Guard
    metrics: WorkerMetrics
    #: the worker's progress (``/health``); ``None``: no such route
    health: Health | None
    #: the live page (``live.html``)
    page: str
    #: the views' own pool and threads: browsers cannot starve the fold of connections
    engine: Engine
    executor: ThreadPoolExecutor
    #: event streams open now (at most :data:`MAX_STREAMS`)
    streams_open: int = 0

    @classmethod
    def build(
        cls,
        app: faust.App,
        engine: Engine,
        metrics: WorkerMetrics,
        settings: Settings,
        health: Health | None,
    ) -> WebContext:
        """The views' context on the store of ``engine``; refuses a web server without a token."""
        guard = guard_for(settings)
        page = files("churnwatch.streams").joinpath("live.html").read_text(encoding="utf-8")
        web_engine = store.make_engine(
            engine.url.render_as_string(hide_password=False),
            pool_size=WEB_POOL,
            max_overflow=0,
            pool_timeout=10,
        )
        executor = ThreadPoolExecutor(max_workers=WEB_POOL, thread_name_prefix="web")
        return cls(app, settings, guard, metrics, health, page, web_engine, executor)

    async def in_thread(self, work: Callable[..., T], *args: Any, write: bool = False) -> T:
        """``work(conn, *args)`` in a web thread, in a transaction when it writes."""

        def run() -> T:
            with self.engine.begin() if write else self.engine.connect() as conn:
                return work(conn, *args)

        return await asyncio.get_running_loop().run_in_executor(self.executor, run)


#: where :func:`register_web` keeps the views' :class:`WebContext` on the aiohttp app
CONTEXT = aiohttp_web.AppKey("churnwatch_web", WebContext)


class ContextView(faust.web.View):
    """A view that answers from the :class:`WebContext` of the web server it is added to."""

    def __init__(self, app: Any, web: Any) -> None:
        super().__init__(app, web)
        # Faust types its web driver abstractly; the worker's is aiohttp's (web_app)
        self.ctx: WebContext = web.web_app[CONTEXT]

    def reply(self, value: Any, status: int = 200) -> Response:
        """``value`` as a JSON answer."""
        return self.bytes(orjson.dumps(value), content_type=JSON, status=status)

    async def found(self, read: Callable[[Any, str], Any], key: str, what: str) -> Response:
        """``read(conn, key)`` as JSON, or a 404 naming the ``what`` not found."""
        view = await self.ctx.in_thread(read, key)
        if view is None:
            return self.reply({"error": f"no {what} {key!r}"}, 404)
        return self.reply(view)


class Guarded(ContextView):
    """A view that needs a token: ``read`` to ``GET``, ``act`` to ``POST``."""

    #: the page redirects to the login instead of answering 401
    login_redirect: ClassVar[bool] = False
    #: open to all when ``CHURNWATCH_WEB_METRICS_OPEN`` is on (``/metrics``, ``/health``)
    open_with_metrics: ClassVar[bool] = False

    async def dispatch(self, request: Any) -> Any:
        """Answer ``request`` if its token may; a 401 or 403 if not; a 400 for a bad parameter."""
        if self.open_with_metrics and self.ctx.settings.web_metrics_open:
            return await super().dispatch(request)
        identity = self.ctx.guard.identify(request.headers, request.cookies)
        if identity is None:
            if self.login_redirect:
                raise aiohttp_web.HTTPSeeOther("/login")
            return self.reply({"error": "a token is required (docs/security.md)"}, 401)
        if request.method == "POST":
            by_cookie = auth.bearer(request.headers) is None
            if reason := self.ctx.guard.refuse_post(request.headers, by_cookie=by_cookie):
                return self.reply({"error": reason}, 403)
        needs = "act" if request.method == "POST" else "read"
        if not identity.may(needs):
            return self.reply({"error": f"the {identity.role!r} role may not do this"}, 403)
        request["identity"] = identity
        try:
            return await super().dispatch(request)
        except BadParameter as exc:
            body = {"error": str(exc), "parameter": exc.parameter, "allowed": list(exc.allowed)}
            return self.reply(body, 400)


class Login(ContextView):
    """``GET /login?token=`` or ``POST /login`` (a form): the token as a cookie."""

    async def get(self, request: Request) -> Any:
        """Log in with ``?token=``, or show the form."""
        presented = request.query.get("token")
        if presented:
            return self._login(presented)
        return self.bytes(_LOGIN_FORM, content_type="text/html")

    async def post(self, request: Request) -> Any:
        """Log in with the form's token."""
        if not self.ctx.guard.host_allowed(request.headers.get("Host")):
            return self.reply({"error": "this Host is not allowed"}, 403)
        try:
            form = await request.post()
        except ValueError as exc:  # a malformed form (a multipart body without a boundary)
            return self.reply({"error": f"not a form: {exc}"}, 400)
        return self._login(str(form.get("token", "")))

    def _login(self, presented: str) -> Any:
        if self.ctx.guard.match(presented) is None:
            return self.reply({"error": "unknown token"}, 401)
        response = aiohttp_web.HTTPSeeOther("/alerts")
        response.set_cookie(auth.COOKIE, presented, httponly=True, samesite="Strict", path="/")
        return response


class LivePage(Guarded):
    """``GET /alerts``: the retention worklist."""

    login_redirect = True

    async def get(self, request: Request) -> Response:
        """The page; it asks the JSON API for its rows."""
        return self.html(self.ctx.page)


class Alerts(Guarded):
    """``GET /api/alerts``."""

    async def get(self, request: Request) -> Response:
        """Alerts, most value at risk first."""
        flt = _filter(request)
        rows = await self.ctx.in_thread(alert_feed.list_alerts, flt)
        return self.reply(rows)


class AlertStream(Guarded):
    """``GET /api/alerts/stream``: server-sent events, one per new alert."""

    async def get(self, request: Request) -> aiohttp_web.StreamResponse | Response:
        """The stream, unless :data:`MAX_STREAMS` are open already (503)."""
        ctx = self.ctx
        if ctx.streams_open >= MAX_STREAMS:
            return self.reply({"error": "too many open streams; retry later"}, 503)
        ctx.streams_open += 1
        try:
            return await self._stream(request)
        finally:
            ctx.streams_open -= 1

    async def _stream(self, request: Request) -> aiohttp_web.StreamResponse:
        flt = _filter(request)
        # a reconnecting browser sends the id of the last event it received
        since = _since(request.headers.get("Last-Event-ID") or request.query.get("since"))
        now = utcnow()
        cursor = FeedCursor(since=max(since or now, now - MAX_SINCE))
        response = aiohttp_web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(cast(Any, request))
        await response.write(b"retry: 1000\n\n")
        ends = time.monotonic() + STREAM_LIFETIME_S
        try:
            while time.monotonic() < ends:
                rows = await self.ctx.in_thread(alert_feed.alerts_since, cursor.poll_from, flt)
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


class Acknowledge(Guarded):
    """``POST /api/alerts/{alert_id}/ack``."""

    async def post(self, request: Request, alert_id: str) -> Response:
        """Acknowledge the alert as the caller's identity."""
        # who acknowledges is who authenticated; a ``by`` in the body is ignored
        by = cast(Any, request)["identity"].name
        now = utcnow()
        ack = await self.ctx.in_thread(alert_feed.acknowledge, alert_id, by, now, write=True)
        if ack is None:
            return self.reply({"error": f"no alert {alert_id!r}"}, 404)
        return self.reply(ack)


class Cases(Guarded):
    """``GET /api/cases``."""

    async def get(self, request: Request) -> Response:
        """One row per case, most value at risk first, with counts for the filters."""
        flt = _case_filter(request)
        return self.reply(await self.ctx.in_thread(alert_feed.list_cases, flt))


class Case(Guarded):
    """``GET /api/cases/{case_id}``."""

    async def get(self, request: Request, case_id: str) -> Response:
        """The case's alerts, oldest first, with their tasks."""
        return await self.found(alert_feed.case_view, case_id, "case")


class Assign(Guarded):
    """``POST /api/cases/{case_id}/assign``."""

    async def post(self, request: Request, case_id: str) -> Response:
        """Give the case to ``{"owner": ...}`` (``""``: to nobody) as the caller's identity."""
        try:
            body = orjson.loads(await cast(Any, request).read() or b"{}")
            owner = body.get("owner", "") if isinstance(body, dict) else None
        except orjson.JSONDecodeError:
            owner = None
        if not isinstance(owner, str):
            return self.reply({"error": 'send {"owner": "name"} ("" to unassign)'}, 400)
        by = cast(Any, request)["identity"].name
        try:
            done = await self.ctx.in_thread(
                alert_feed.assign, case_id, owner, by, utcnow(), write=True
            )
        except ValueError as exc:
            return self.reply({"error": str(exc)}, 400)
        if done is None:
            return self.reply({"error": f"no case {case_id!r}"}, 404)
        return self.reply(done)


class Tasks(Guarded):
    """``GET /api/tasks``."""

    async def get(self, request: Request) -> Response:
        """The newest win-back tasks."""
        status = request.query.get("status") or None
        rows = await self.ctx.in_thread(alert_feed.list_tasks, status, _limit(request))
        return self.reply(rows)


class Customer(Guarded):
    """``GET /api/customers/{customer_id}``."""

    async def get(self, request: Request, customer_id: str) -> Response:
        """The customer's stage, tier, score, feature row and recent alerts."""
        return await self.found(alert_feed.customer_view, customer_id, "customer")


class Worker(Guarded):
    """``GET /api/worker``."""

    async def get(self, request: Request) -> Response:
        """This worker's app id, the input partitions it holds, its open streams."""
        app = self.ctx.app
        assigned = app.consumer.assignment() if app.consumer else set()
        # input topics are co-partitioned: one topic's partitions name them all
        partitions = sorted({tp.partition for tp in assigned if tp.topic == PURCHASES})
        body = {
            "app_id": app.conf.id,
            "partitions": partitions,
            "streams": self.ctx.streams_open,
            "currency": self.ctx.settings.currency,
        }
        return self.reply(body)


class HealthCheck(Guarded):
    """``GET /health``: 200 while the worker makes progress, 503 when it is stuck."""

    open_with_metrics = True

    async def get(self, request: Request) -> Response:
        """The worker's progress report."""
        status, body = cast(Health, self.ctx.health).report()
        return self.reply(body, status)


class Metrics(Guarded):
    """``GET /metrics``: Prometheus text format."""

    open_with_metrics = True

    async def get(self, request: Request) -> Response:
        """The worker's metrics."""
        # aiohttp refuses a charset in ``content_type``; Prometheus's type carries one
        body = self.ctx.metrics.exposition()
        return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


#: the routes :func:`register_web` adds, in order: path, the query parameters it
#: takes (any other is a 400, :func:`edge_middleware`) and its view
ROUTE_TABLE: tuple[tuple[str, tuple[str, ...], type[ContextView]], ...] = (
    ("/login", ("token",), Login),
    ("/alerts", PAGE_QUERY, LivePage),
    ("/api/alerts", ALERT_QUERY, Alerts),
    ("/api/alerts/stream", (*ALERT_QUERY, "since"), AlertStream),
    ("/api/alerts/{alert_id}/ack", (), Acknowledge),
    ("/api/cases", CASE_QUERY, Cases),
    ("/api/cases/{case_id}", (), Case),
    ("/api/cases/{case_id}/assign", (), Assign),
    ("/api/tasks", ("status", "limit"), Tasks),
    ("/api/customers/{customer_id}", (), Customer),
    ("/api/worker", (), Worker),
    ("/health", (), HealthCheck),
    ("/metrics", (), Metrics),
)


def register_web(
    app: faust.App,
    engine: Engine,
    metrics: WorkerMetrics,
    settings: Settings,
    health: Health | None = None,
) -> None:
    """Add the live page, the JSON API, ``/metrics`` and ``/health`` to ``app``'s web server.

    The views of :data:`ROUTE_TABLE` share one :class:`WebContext`; without
    ``health`` there is no ``/health``.
    """
    context = WebContext.build(app, engine, metrics, settings, health)
    # the paths served here and their query parameters; the edge answers 404 on
    # any other route (Faust's own) and 400 on a parameter a route does not take
    ours: dict[str, tuple[str, ...]] = {}
    # Faust types its web driver abstractly; the worker's is aiohttp's (web_app)
    web_app = cast(Any, app.web).web_app
    web_app[ROUTES] = ours
    web_app[CONTEXT] = context
    web_app.middlewares.append(edge_middleware(ours))
    _quiet_refusals()
    for path, query, view in ROUTE_TABLE:
        if view is HealthCheck and health is None:
            continue
        ours[path] = query
        app.page(path)(view)
