"""docs/openapi.yaml and the code agree: the same routes, methods, path parameters and enums.

The routes are read from the worker's own web server as :func:`register_web`
builds it, so that a route added, removed or renamed in the code and not in
the document (or the other way round) fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
import schemathesis
import yaml

from churnwatch import store
from churnwatch.alerts.config import LEVELS
from churnwatch.features.segments import SEGMENTS
from churnwatch.features.tier import TIERS
from churnwatch.models.reasons import REASONS
from churnwatch.settings import Settings
from churnwatch.streams.app import app_options
from churnwatch.streams.feed import (
    ALERT_FILTER_STATUSES,
    ALERT_STATUSES,
    CASE_STATUSES,
    LIMIT_MAX,
    TASK_STATUSES,
)
from churnwatch.streams.health import Health
from churnwatch.streams.metrics import WorkerMetrics
from churnwatch.streams.web import ROUTES, register_web

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def web_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The aiohttp app of a worker's web server, as :func:`register_web` builds it."""
    settings = Settings(web_port=6066, web_token="drift-token-0123456789abcdef")
    app = faust.App("openapi-drift", **app_options(settings, "127.0.0.1:9092"))
    # a file, as the worker's: the web views' pool options do not fit an in-memory one
    engine = store.make_engine(f"sqlite:///{tmp_path_factory.mktemp('drift') / 'store.db'}")
    register_web(app, engine, WorkerMetrics(), settings, Health(stall_s=60.0))
    yield app.web.web_app  # type: ignore[attr-defined]
    engine.dispose()


@pytest.fixture(scope="module")
def served(web_app: Any) -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every route the worker's web server serves (HEAD aside)."""
    return {
        (route.method, route.resource.canonical)
        for route in web_app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def _documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    }


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its ``$ref`` points at (local references only)."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _parameters(spec: dict[str, Any], path: str, method: str) -> dict[str, dict[str, Any]]:
    operation = spec["paths"][path][method]
    found = [_resolve(spec, p) for p in operation.get("parameters", [])]
    return {p["name"]: p for p in found}


def _enum(spec: dict[str, Any], parameter: dict[str, Any]) -> tuple[str, ...]:
    schema = _resolve(spec, parameter["schema"])
    if schema.get("type") == "array":
        schema = _resolve(spec, schema["items"])
    return tuple(schema["enum"])


def test_the_document_is_valid_openapi_3(spec: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.[01]\.\d+", spec["openapi"])
    # against the OpenAPI specification's own JSON schema
    schemathesis.openapi.from_path(DOC).validate()


def test_every_route_of_the_code_is_documented_and_no_other(
    spec: dict[str, Any], served: set[tuple[str, str]]
) -> None:
    documented = _documented(spec)
    assert served - documented == set(), "served but not in docs/openapi.yaml"
    assert documented - served == set(), "in docs/openapi.yaml but not served"


def test_path_parameters_match_the_routes(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        in_path = set(re.findall(r"{(\w+)}", path))
        for method in METHODS:
            if method not in item:
                continue
            params = _parameters(spec, path, method)
            declared = {name for name, p in params.items() if p["in"] == "path"}
            assert declared == in_path, (method, path)
            assert all(params[name]["required"] for name in declared), (method, path)


def test_each_route_takes_the_query_parameters_documented(
    spec: dict[str, Any], web_app: Any
) -> None:
    taken: dict[str, tuple[str, ...]] = web_app[ROUTES]
    assert set(taken) == set(spec["paths"])
    for path, item in spec["paths"].items():
        documented = {
            name
            for method in METHODS
            if method in item
            for name, p in _parameters(spec, path, method).items()
            if p["in"] == "query"
        }
        assert set(taken[path]) == documented, path


@pytest.mark.parametrize(
    ("path", "name", "values"),
    [
        ("/api/alerts", "tier", TIERS),
        ("/api/alerts", "reason", REASONS),
        ("/api/alerts", "status", ALERT_FILTER_STATUSES),
        ("/api/alerts/stream", "tier", TIERS),
        ("/api/alerts/stream", "reason", REASONS),
        ("/api/alerts/stream", "status", ALERT_FILTER_STATUSES),
        ("/api/cases", "status", CASE_STATUSES),
        ("/api/cases", "tier", TIERS),
        ("/api/cases", "reason", REASONS),
        ("/api/cases", "level", LEVELS),
        ("/api/tasks", "status", TASK_STATUSES),
    ],
)
def test_enumerated_filters_take_what_the_code_takes(
    spec: dict[str, Any], path: str, name: str, values: tuple[str, ...]
) -> None:
    assert _enum(spec, _parameters(spec, path, "get")[name]) == values


def test_the_case_filters_name_every_segment_and_the_limit_its_bound(
    spec: dict[str, Any],
) -> None:
    cases = _parameters(spec, "/api/cases", "get")
    assert set(SEGMENTS) <= set(cases)
    for path in ("/api/alerts", "/api/alerts/stream", "/api/cases", "/api/tasks"):
        limit = _resolve(spec, _parameters(spec, path, "get")["limit"]["schema"])
        assert (limit["minimum"], limit["maximum"]) == (1, LIMIT_MAX), path


def test_response_enums_are_the_code_s(spec: dict[str, Any]) -> None:
    alert = spec["components"]["schemas"]["Alert"]["properties"]
    assert tuple(alert["status"]["enum"]) == ALERT_STATUSES
    assert tuple(alert["risk_level"]["enum"]) == LEVELS
    assert tuple(alert["value_tier"]["enum"]) == TIERS
    assert tuple(alert["reason"]["enum"]) == REASONS
