"""The web edge's pure parts: who a request's headers name, and how refusals are logged."""

from __future__ import annotations

import logging
import sys

from aiohttp.http_exceptions import LineTooLong

from churnwatch.streams import auth
from churnwatch.streams.web import QuietRefusals
from churnwatch.web_access import parse_credentials

TOKEN = "guard-token-0123456789abcdef"
GUARD = auth.Guard(parse_credentials(TOKEN, None), user_header="X-Forwarded-User")
# aiohttp decodes a header's bytes that are not UTF-8 as lone surrogates
NOT_UTF8 = b"\xff\xfe-0123456789abcdef".decode("utf-8", "surrogateescape")


def test_a_token_that_is_not_utf8_names_no_one() -> None:
    assert GUARD.identify({"Authorization": f"Bearer {NOT_UTF8}"}, {}) is None
    assert GUARD.identify({}, {auth.COOKIE: NOT_UTF8}) is None
    assert GUARD.identify({"Authorization": "Bearer a\x00b-0123456789abcdef"}, {}) is None
    assert GUARD.match(NOT_UTF8) is None


def test_a_proxy_s_user_name_must_be_text() -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert GUARD.identify(bearer, {}) == auth.Identity("operator", "act")
    named = GUARD.identify({**bearer, "X-Forwarded-User": " ann "}, {})
    assert named == auth.Identity("ann", "act")
    assert GUARD.identify({**bearer, "X-Forwarded-User": NOT_UTF8}, {}) is None
    assert GUARD.identify({**bearer, "X-Forwarded-User": "a\x00b"}, {}) is None


def _record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except type(exc):
        info = sys.exc_info()
    return logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s",
        ("127.0.0.1",),
        info,
    )


def test_a_client_s_malformed_request_is_one_warning_line() -> None:
    record = _record(LineTooLong(b"x" * 100, 8190))
    assert QuietRefusals().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "refused a malformed request from 127.0.0.1: 400 LineTooLong"
    assert "xxx" not in logging.Formatter().format(record)


def test_a_server_fault_keeps_its_traceback() -> None:
    record = _record(RuntimeError("the store is gone"))
    assert QuietRefusals().filter(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None
