"""Schemathesis against a live worker, from docs/openapi.yaml: no 500, no answer off its schema.

Hypothesis draws requests from the document, valid and invalid ones, and
sends them to a real worker, over SQLite and over PostgreSQL (which refuses
a NUL in text). Each answer must be no 5xx, a documented status, of the
documented content type and match the documented schema. Draws are
derandomised and bounded, so that the test is the same on every run and stays
within a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.kafka_helpers import TEST_TOKEN
from tests.web_helpers import Worker, live_worker_on

pytestmark = pytest.mark.kafka
DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
#: the event stream answers for 15 s a call; test_web_edge.py covers its parameters
SCHEMA = schemathesis.openapi.from_path(DOC).exclude(path="/api/alerts/stream")
#: what each answer must pass. Left out: the checks that send probes of their own
#: (ignored_auth and the like) through Schemathesis's transport (see below);
#: test_web_auth.py sends every route without a token.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: examples per operation: enough to reach each parameter's edges, few enough for ~60 s
EXAMPLES = 30


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def worker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp(f"contract-{request.param}")
    with live_worker_on(request.param, tmp) as w:
        yield w


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_contract(case: schemathesis.Case, worker: Worker) -> None:
    # Sent with requests here, not case.call(): grafana-client's niquests installs
    # urllib3-future in urllib3's place, whose pools Schemathesis's own transport
    # cannot count (AttributeError: 'TrafficPolice' object has no attribute 'keys').
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    sent = case.as_transport_kwargs(base_url=worker.base_url, headers=headers)
    response = requests.request(**sent, allow_redirects=False, timeout=10)
    # /health's 503 tells of the worker, not of the request: documented, so allowed
    checks = [c for c in CHECKS if case.path != "/health" or c is not not_a_server_error]
    case.validate_response(response, checks=checks, headers=headers, transport_kwargs=sent)
