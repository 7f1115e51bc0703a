"""Settings from the environment, with clear errors for bad values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from churnwatch import times
from churnwatch.settings import Settings


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHURNWATCH_BROKER", "CHURNWATCH_DB_URL", "CHURNWATCH_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.broker is None
    assert settings.db_url == "sqlite:///churnwatch-data/churnwatch.db"
    assert settings.partitions == 4


def test_values_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNWATCH_BROKER", "kafka1:9092")
    monkeypatch.setenv("CHURNWATCH_PARTITIONS", "12")
    monkeypatch.setenv("CHURNWATCH_MAX_FUTURE_S", "90.5")
    settings = Settings.from_env()
    assert (settings.broker, settings.partitions, settings.max_future_s) == (
        "kafka1:9092",
        12,
        90.5,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CHURNWATCH_PARTITIONS", "many", "is not an integer"),
        ("CHURNWATCH_BATCH_WITHIN_S", "soon", "is not a number"),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name}='{value}' {message}"):
        Settings.from_env()


def test_settings_survive_a_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = Settings(
        broker="b:1",
        partitions=3,
        allowed_lateness_s=3600.0,
        web_port=0,
        clock_offset_s=-86400.5,
    )
    for name, value in wanted.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env() == wanted


def test_lateness_beyond_the_longest_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNWATCH_ALLOWED_LATENESS_S", str(400 * 86400))
    with pytest.raises(ValueError, match="allowed lateness must lie between 0 and 365 days"):
        Settings.from_env()


def test_the_customer_cache_size_is_read_and_must_hold_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNWATCH_CACHE_CUSTOMERS", "500")
    assert Settings.from_env().cache_customers == 500
    monkeypatch.setenv("CHURNWATCH_CACHE_CUSTOMERS", "0")
    with pytest.raises(ValueError, match="the customer cache must hold at least 1 customer"):
        Settings.from_env()


def test_the_clock_offset_is_read_and_a_bad_one_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNWATCH_CLOCK_OFFSET_S", "-3600")
    assert Settings.from_env().clock_offset_s == -3600.0
    monkeypatch.setenv("CHURNWATCH_CLOCK_OFFSET_S", "yesterday")
    with pytest.raises(ValueError, match="CHURNWATCH_CLOCK_OFFSET_S='yesterday' is not a number"):
        Settings.from_env()


def test_the_currency_is_read_and_must_be_a_code(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().currency == "EUR"
    monkeypatch.setenv("CHURNWATCH_CURRENCY", "GBP")
    assert Settings.from_env().currency == "GBP"
    for bad in ("gbp", "POUND", "G1P"):
        monkeypatch.setenv("CHURNWATCH_CURRENCY", bad)
        with pytest.raises(ValueError, match=f"ISO 4217 code, e.g. EUR \\(got '{bad}'\\)"):
            Settings.from_env()


def test_a_moved_clock_reads_its_moment_and_runs_on() -> None:
    moment = datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
    before = times.utcnow() - datetime.now(UTC)
    try:
        times.set_clock_offset(times.offset_to(moment))
        first = times.utcnow()
        second = times.utcnow()
        assert moment <= first <= second < moment + timedelta(minutes=5)
        times.set_clock_offset(0)
        assert abs(times.utcnow() - datetime.now(UTC)) < timedelta(seconds=5)
    finally:
        times.set_clock_offset(before.total_seconds())
