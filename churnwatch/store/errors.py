"""Which failures of a store step are worth retrying as they are.

A *transient* failure says nothing about the batch: the connection was lost,
the database is down or restarting, a transaction lost a serialization race or
a deadlock, SQLite's file is locked by another writer. Retrying the same batch
later succeeds. Anything else raised while a batch is stored or folded is taken
to be caused by the data, and the batch is split to find the record
(:mod:`churnwatch.engine.isolation`).
"""

from __future__ import annotations

import sqlite3

import psycopg
import sqlalchemy.exc as sa_exc


class Retryable(Exception):
    """A failure known to pass, whatever raised it: a fold process that died, say.

    Raised where the original exception cannot travel (from another process),
    so that the batch is retried as a whole rather than split.
    """


class Failed(Exception):
    """A data error raised in another process; its text names the original type."""


def described(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, naming the original type of a :class:`Failed`."""
    return str(exc) if isinstance(exc, Failed) else f"{type(exc).__name__}: {exc}"


#: SQLite reports a busy or missing file as OperationalError, as it does a bad query
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o")


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` from a store step is a passing fault of the database or its connection."""
    if isinstance(exc, Retryable):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, sa_exc.InterfaceError):
        return True
    if isinstance(exc, sa_exc.OperationalError):
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):
            message = str(orig).lower()
            return any(sign in message for sign in _SQLITE_TRANSIENT)
        # PostgreSQL's class 54 (a statement over a limit) comes from what is stored
        return not isinstance(orig, psycopg.errors.ProgramLimitExceeded)
    return isinstance(exc, psycopg.OperationalError)
