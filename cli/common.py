"""What the commands share: the root Typer app, settings, dates, configs, secrets, progress."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnwatch.cli.failures import Code, Failure, FailureGroup, db_url_failure, set_verbose
from churnwatch.settings import DEFAULT_DATA_DIR, Settings
from churnwatch.times import set_clock_offset

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

app = typer.Typer(
    cls=FailureGroup,
    help="churnwatch: event-sourced churn early warning on Kafka streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            envvar="CHURNWATCH_DEBUG",
            help="On an error, show the traceback; show Kafka's and SQLAlchemy's logs "
            "(or CHURNWATCH_DEBUG=1).",
        ),
    ] = False,
) -> None:
    """churnwatch: event-sourced churn early warning on Kafka streams."""
    set_verbose(verbose)


def settings() -> Settings:
    """The settings from the environment; exit 2 naming the variable if one is bad."""
    try:
        read = Settings.from_env()
    except ValueError as exc:
        raise Failure(f"bad setting: {exc}", Code.USAGE) from None
    set_clock_offset(read.clock_offset_s)
    return read


#: the SQL databases the store runs on (the migrations and the COPY import know these)
_BACKENDS = ("sqlite", "postgresql")


def check_db_url(url: str) -> None:
    """Fail in one line for a store URL churnwatch cannot use, before any connection.

    A SQLite file's folder must exist, but for the default data folder, which is
    created on first use: a typo in a path should not make a new database elsewhere.
    """
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise db_url_failure("it cannot be parsed as a URL") from None
    backend = parsed.get_backend_name()
    if backend not in _BACKENDS:
        raise db_url_failure(f"{backend!r} is not SQLite or PostgreSQL")
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError:
        raise db_url_failure(
            f"its driver {parsed.get_driver_name()!r} is not installed; "
            "for PostgreSQL write postgresql+psycopg://"
        ) from None
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        if not folder.is_dir() and folder.resolve() != DEFAULT_DATA_DIR.resolve():
            raise Failure(
                f"the store's folder {folder} does not exist (CHURNWATCH_DB_URL={url})",
                Code.USAGE,
                hint=f"create it (mkdir -p {folder}) or point CHURNWATCH_DB_URL elsewhere",
            )


def store_engine(upgrade: bool = True) -> Engine:
    """The store of the settings, its URL checked, with a bounded connect time; migrated."""
    from churnwatch import store

    read = settings()
    check_db_url(read.db_url)
    options: dict[str, Any] = {}
    if read.db_url.startswith("postgresql"):
        # libpq waits as long as the OS does for an unroutable host; bound it
        options["connect_args"] = {"connect_timeout": max(1, round(read.connect_timeout_s))}
    engine = store.make_engine(read.db_url, **options)
    if upgrade:
        store.upgrade(engine)
    return engine


def producer_config(read: Settings) -> dict[str, Any]:
    """kafka-python's arguments for a producer: security, and a bounded wait for a broker."""
    return {
        **read.kafka_security.client_config(),
        "bootstrap_timeout_ms": int(read.connect_timeout_s * 1000),
    }


def date_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--from`` and ``--to`` as times; exit 2 unless ``--from`` comes before ``--to``."""
    start, end = parse_date(since, "--from"), parse_date(until, "--to")
    if start is not None and end is not None and start >= end:
        # the words of `churnwatch train`'s own check
        raise Failure(
            f"--from {start.isoformat()} is not before --to {end.isoformat()}: "
            "give a --from earlier than the --to"
        )
    return start, end


def positive(value: float | None) -> float | None:
    """A Typer callback: refuse a number that is not above 0 (a horizon, a rate)."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value:g} is not above 0")
    return value


def parse_date(value: str | None, option: str = "") -> datetime | None:
    """An ISO date or time (naive: UTC); exit 2 naming ``option`` if it is none."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        named = f"{option} " if option else ""
        raise typer.BadParameter(f"{named}{value!r} is not an ISO date, e.g. 2026-06-30") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def policy() -> Any:
    """The alert policy of the settings; exit 2 with the reasons if it is invalid."""
    from churnwatch.alerts.config import DEFAULT_POLICY, load_policy

    return load_config("alert policy", load_policy, settings().policy_file or DEFAULT_POLICY)


def playbook() -> Any:
    """The win-back playbook of the settings; exit 2 with the reasons if it is invalid."""
    from churnwatch.alerts.config import DEFAULT_PLAYBOOK, load_playbook

    return load_config("playbook", load_playbook, settings().playbook_file or DEFAULT_PLAYBOOK)


def load_config(what: str, load: Any, path: Path) -> Any:
    from churnwatch.alerts.config import ConfigError

    try:
        return load(path)
    except ConfigError as exc:
        print(f"cannot use the {what}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


def scorer_for(engine: Any, model: Path | None) -> Any:
    """The scorer of ``model``, else the promoted model, else the rule; exit 2 if unloadable."""
    from churnwatch.engine.model_source import ModelSource

    try:
        return ModelSource(engine, models_dir=settings().models_dir, pinned=model)()
    except (OSError, ValueError, TypeError) as exc:
        print(f"cannot load model {model}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


def pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``a=b`` items (each may hold several, comma-separated) as a dict."""
    out = {}
    for value in values or []:
        for item in value.split(","):
            name, sep, target = item.partition("=")
            if not sep or not name.strip() or not target.strip():
                raise typer.BadParameter(f"{option} {item!r}: write field=value")
            out[name.strip()] = target.strip()
    return out


def per_day(capacity: str) -> float:
    """``50/day`` or ``200/week`` (or a bare number per day) as alerts per day."""
    count, _, unit = capacity.partition("/")
    days = {"": 1.0, "day": 1.0, "week": 7.0}.get(unit.strip().lower())
    try:
        value = float(count)
    except ValueError:
        value = -1.0
    if days is None or value <= 0:
        raise typer.BadParameter(f"--capacity {capacity!r}: write e.g. 50/day or 200/week")
    return value / days


def secret(value: str | None, path: Path | None, option: str) -> str | None:
    """An option's value, or the contents of its ``-file`` form (a Docker or Kubernetes secret)."""
    if path is None:
        return value
    if value is not None:
        raise typer.BadParameter(f"give {option} or {option}-file, not both")
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise typer.BadParameter(f"{option}-file {path}: cannot read it ({exc.strerror})") from None


def progress(total: int | None):
    """A per-record callback that redraws a one-line counter on stderr."""
    seen = 0

    def tick(_record: object) -> None:
        nonlocal seen
        seen += 1
        if seen % 1000 == 0 or seen == total:
            of = f"/{total}" if total else ""
            sys.stderr.write(f"\rproduced {seen}{of} events")
            sys.stderr.flush()

    return tick
