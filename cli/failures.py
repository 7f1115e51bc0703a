"""Expected failures as one line and a stable exit code; tracebacks only when asked.

Every command runs inside :class:`FailureGroup`: what a command raises is turned
into ``error: …`` (and a ``hint: …`` where one helps) on stderr and an exit code
of :class:`Code`. ``--verbose`` or ``CHURNWATCH_DEBUG=1`` prints the traceback too.
The codes are documented in docs/operations.md ("Exit codes").
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from enum import IntEnum
from typing import Any

import typer
from typer.core import TyperGroup

#: loggers of libraries that speak for themselves on every retry; quiet unless --verbose
NOISY_LOGGERS = ("kafka", "aiokafka", "sqlalchemy", "alembic")


class Code(IntEnum):
    """The exit codes of every command."""

    OK = 0
    #: a service failed: the store, the broker or Grafana is unreachable or refused,
    #: or a file could not be written; the same command may work once that is fixed
    UNAVAILABLE = 1
    #: the input is wrong: an option, a setting, an input file, a config file
    USAGE = 2
    #: ``train --promote`` refused a candidate that ranks worse than a baseline
    REFUSED = 3
    #: a bug: an error churnwatch does not expect (sysexits' EX_SOFTWARE)
    INTERNAL = 70
    #: stopped with Ctrl-C
    INTERRUPTED = 130


class Failure(Exception):
    """An expected failure of a command: what went wrong, an exit code, maybe a hint."""

    def __init__(self, message: str, code: Code = Code.USAGE, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.hint = message, code, hint


_verbose = False


def set_verbose(on: bool) -> None:
    """Show tracebacks and library logs (``--verbose`` / ``CHURNWATCH_DEBUG=1``)."""
    global _verbose
    _verbose = on
    for name in NOISY_LOGGERS:
        # NOTSET: the root logger's level (WARNING) applies again
        logging.getLogger(name).setLevel(logging.NOTSET if on else logging.CRITICAL)


def verbose() -> bool:
    """Whether tracebacks are wanted."""
    return _verbose or _debug_env()


def _debug_env() -> bool:
    return (os.environ.get("CHURNWATCH_DEBUG") or "").strip().lower() in ("1", "true", "yes", "on")


class FailureGroup(TyperGroup):
    """The root command group: turns what its commands raise into a :class:`Failure`."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        """Run the command; report an expected failure in a line and exit with its code."""
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # Typer's own: usage errors (2), typer.Exit, Ctrl-C at a prompt
        except KeyboardInterrupt:
            typer.echo("\nstopped", err=True)
            raise typer.Exit(Code.INTERRUPTED) from None
        except Exception as exc:  # every other error is turned into a line
            failure = explain(exc)
            if verbose():
                traceback.print_exc(file=sys.stderr)
            report(failure)
            raise typer.Exit(failure.code) from None


def report(failure: Failure) -> None:
    """Print ``failure`` as ``error: …`` and ``hint: …`` on stderr."""
    typer.secho(f"error: {failure.message}", err=True, fg="red")
    if failure.hint:
        typer.echo(f"hint: {failure.hint}", err=True)


def explain(exc: BaseException) -> Failure:
    """The :class:`Failure` that ``exc`` is: known errors by kind, any other as a bug."""
    if isinstance(exc, Failure):
        return exc
    for explainer in (_store_failure, _broker_failure, _file_failure):
        failure = explainer(exc)
        if failure is not None:
            return failure
    return Failure(
        f"unexpected {type(exc).__name__}: {_first_line(exc)}",
        Code.INTERNAL,
        hint="this is a bug in churnwatch: run again with --verbose and report the traceback",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _store_failure(exc: BaseException) -> Failure | None:
    """A database that cannot be reached or used."""
    import psycopg
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, sa_exc.ArgumentError | sa_exc.NoSuchModuleError):
        return db_url_failure(str(exc))
    if not isinstance(exc, sa_exc.DBAPIError | psycopg.Error | sa_exc.TimeoutError):
        return None
    cause = getattr(exc, "orig", None) or exc
    message = _first_line(cause)
    where = _store_shown()
    lowered = message.lower()
    if "does not exist" in lowered and "database" in lowered:
        hint = "create the database (e.g. createdb), or point CHURNWATCH_DB_URL at another one"
    elif any(
        sign in lowered for sign in ("refused", "timeout", "timed out", "could not translate")
    ):
        hint = "is the database server running and reachable? check CHURNWATCH_DB_URL"
    elif "password" in lowered or "authentication" in lowered:
        hint = "check the login in CHURNWATCH_DB_URL (or CHURNWATCH_DB_URL_FILE)"
    else:
        hint = "run with --verbose for the details"
    return Failure(f"cannot use the store {where}: {message}", Code.UNAVAILABLE, hint)


def db_url_failure(detail: str) -> Failure:
    """A ``CHURNWATCH_DB_URL`` that is no database URL churnwatch can use."""
    return Failure(
        f"CHURNWATCH_DB_URL is not a database URL churnwatch can use: {detail}",
        Code.USAGE,
        hint="churnwatch stores to SQLite or PostgreSQL, e.g. "
        "sqlite:///churnwatch-data/churnwatch.db or postgresql+psycopg://user@host:5432/db",
    )


def _store_shown() -> str:
    """The store's URL with its password masked (never the password itself)."""
    import sqlalchemy as sa

    from churnwatch.settings import Settings

    try:
        return sa.make_url(Settings.from_env().db_url).render_as_string(hide_password=True)
    except Exception:  # settings or a URL that cannot be read: name no URL
        return "(CHURNWATCH_DB_URL)"


def _broker_failure(exc: BaseException) -> Failure | None:
    """A Kafka broker that cannot be reached."""
    from kafka.errors import KafkaError

    from churnwatch.topics import BrokerUnreachable

    if isinstance(exc, BrokerUnreachable):
        return Failure(
            str(exc),
            Code.UNAVAILABLE,
            hint="is the broker running (churnwatch broker starts one)? check "
            "CHURNWATCH_BROKER; CHURNWATCH_CONNECT_TIMEOUT_S sets how long to wait",
        )
    if isinstance(exc, KafkaError):
        return Failure(f"Kafka failed: {_first_line(exc)}", Code.UNAVAILABLE)
    return None


def _file_failure(exc: BaseException) -> Failure | None:
    """A file or folder that cannot be read or written, or a connection that failed."""
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or _first_line(exc)
        return Failure(f"cannot use {exc.filename}: {reason}", Code.UNAVAILABLE)
    if isinstance(exc, ConnectionError | TimeoutError):
        # a service no explainer above knows (Grafana, a Dask scheduler): still not a bug
        return Failure(f"cannot connect: {_first_line(exc)}", Code.UNAVAILABLE)
    return None
