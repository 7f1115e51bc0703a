"""What the commands share: the root Typer app, settings, dates, configs, secrets, progress."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from churnwatch.settings import Settings
from churnwatch.times import set_clock_offset

app = typer.Typer(
    help="churnwatch: event-sourced churn early warning on Kafka streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def settings() -> Settings:
    try:
        read = Settings.from_env()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    set_clock_offset(read.clock_offset_s)
    return read


def parse_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date, e.g. 2026-06-30") from None
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
