"""The worker's fetch wait and event loop: settings, and the consumer Faust builds."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from churnwatch.settings import Settings
from churnwatch.streams.app import create_app


def test_fetch_wait_and_loop_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNWATCH_FETCH_MAX_WAIT_MS", "25")
    monkeypatch.setenv("CHURNWATCH_LOOP", " AsyncIO ")
    settings = Settings.from_env()
    assert (settings.fetch_max_wait_ms, settings.loop) == (25, "asyncio")
    assert Settings().loop == "uvloop"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CHURNWATCH_FETCH_MAX_WAIT_MS", "0", "fetch max wait must lie between 1 and 60000 ms"),
        ("CHURNWATCH_FETCH_MAX_WAIT_MS", "fast", "is not an integer"),
        ("CHURNWATCH_LOOP", "trio", "loop must be one of uvloop, asyncio (got 'trio')"),
    ],
)
def test_bad_fetch_wait_or_loop_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env()


def test_the_worker_consumer_waits_the_configured_time_on_an_empty_fetch() -> None:
    settings = Settings(web_port=0, fetch_max_wait_ms=35, session_timeout_s=3.0)
    app = create_app(settings, "127.0.0.1:1", sa.create_engine("sqlite://"))
    thread = app.consumer._thread  # type: ignore[attr-defined]

    async def built() -> tuple[int, int, str]:
        # built as Faust builds it at start, without connecting
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_max_wait_ms, consumer._session_timeout_ms, consumer._group_id

    # the wait is ours; the rest is Faust's as configured
    assert asyncio.run(built()) == (35, 3000, "churnwatch")
