"""Errors a person can read (issue 31): one line, a stable exit code, no traceback.

One test per mistake a new user made: a bad store URL, an unreachable store or
broker, a file that is not UTF-8 text, an option out of range. Each runs the
command as a user does (a subprocess) and checks the exit code, that no
traceback is shown, and that the message names the problem.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.cli_helpers import run_cli as _run

#: exit codes (docs/operations.md, "Exit codes")
UNAVAILABLE, USAGE = 1, 2
#: a short wait for the unreachable broker, so that its tests are quick
TIMEOUT_S = "2"


def _failed(out: subprocess.CompletedProcess, code: int, *words: str) -> None:
    """``out`` exited with ``code``, showed no traceback, and its stderr names ``words``."""
    shown = out.stdout + out.stderr
    assert out.returncode == code, shown
    assert "Traceback" not in shown and "╭─ Traceback" not in shown, shown
    for word in words:
        assert word in out.stderr, out.stderr


def _closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


AS_OF = ["replay", "--as-of", "2026-06-30", "--scores-out", "s.csv"]


def test_a_url_of_an_unknown_database_kind(tmp_path: Path) -> None:
    out = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL="foo://bar")
    _failed(out, USAGE, "CHURNWATCH_DB_URL", "'foo' is not SQLite or PostgreSQL", "hint: ")
    assert len(out.stderr.splitlines()) == 2


def test_a_url_of_a_database_churnwatch_does_not_store_to(tmp_path: Path) -> None:
    out = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL="mysql://user@127.0.0.1/db")
    _failed(out, USAGE, "'mysql' is not SQLite or PostgreSQL")


def test_a_url_that_is_no_url(tmp_path: Path) -> None:
    out = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL="notaurl")
    _failed(out, USAGE, "CHURNWATCH_DB_URL", "cannot be parsed as a URL")


def test_a_postgresql_that_refuses_the_connection(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://churn:secret@127.0.0.1:{_closed_port()}/test"
    out = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL=url)
    _failed(out, UNAVAILABLE, "cannot use the store", "Connection refused", "hint: ")
    assert "secret" not in out.stderr  # the password is masked
    assert len(out.stderr.splitlines()) == 2


def test_a_database_that_does_not_exist(tmp_path: Path, pg_url: str) -> None:
    missing = sa.make_url(pg_url).set(database="churnwatch_no_such_db", query={})
    url = missing.render_as_string(hide_password=False)
    out = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL=url)
    _failed(out, UNAVAILABLE, 'database "churnwatch_no_such_db" does not exist', "createdb")


@pytest.mark.parametrize(
    "args", [["simulate", "--events", "10"], ["worker"], ["replay", "--publish"]]
)
def test_an_unreachable_broker_fails_within_the_connect_timeout(
    tmp_path: Path, args: list[str]
) -> None:
    broker = f"127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    out = _run(
        args,
        tmp_path,
        CHURNWATCH_BROKER=broker,
        CHURNWATCH_CONNECT_TIMEOUT_S=TIMEOUT_S,
        CHURNWATCH_DB_URL=_sqlite(tmp_path),
        CHURNWATCH_WEB_PORT="0",
    )
    _failed(out, UNAVAILABLE, f"no Kafka broker answered at {broker} within 2 s", "hint: ")
    # the 2 s wait and the start-up of the command, nowhere near kafka-python's 30 s
    assert time.monotonic() - started < 25


def test_topics_create_on_an_unreachable_broker_says_so_without_kafka_logs(
    tmp_path: Path,
) -> None:
    broker = f"127.0.0.1:{_closed_port()}"
    out = _run(
        ["topics", "create"],
        tmp_path,
        CHURNWATCH_BROKER=broker,
        CHURNWATCH_CONNECT_TIMEOUT_S=TIMEOUT_S,
    )
    _failed(out, UNAVAILABLE, f"no Kafka broker answered at {broker}")
    assert out.stderr.splitlines()[0].startswith("error: ")
    assert "kafka." not in out.stderr  # no log lines of kafka-python's loggers
    verbose = _run(
        ["--verbose", "topics", "create"],
        tmp_path,
        CHURNWATCH_BROKER=broker,
        CHURNWATCH_CONNECT_TIMEOUT_S=TIMEOUT_S,
    )
    assert verbose.returncode == UNAVAILABLE
    # asked for: the traceback and kafka-python's own words
    assert "Traceback" in verbose.stderr and "kafka." in verbose.stderr


def test_a_binary_file_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    out = _run(["import", "events.csv"], tmp_path, CHURNWATCH_DB_URL=_sqlite(tmp_path))
    _failed(out, USAGE, "events.csv is a binary file, not text (a gzip archive")


LATIN_1 = (
    "customer_id;ts;amount;currency;order_id;channel\n"
    "Jos\u00e9;2026-01-02T10:00:00Z;3.5;EUR;o1;web\n"
    "M\u00fcller;2026-01-03T10:00:00Z;4;EUR;o2;store\n"
).encode("latin-1")


def test_a_latin_1_csv_is_read_by_its_detected_encoding_and_delimiter(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes(LATIN_1)
    url = _sqlite(tmp_path)
    out = _run(["import", "latin.csv", "--type", "purchase"], tmp_path, CHURNWATCH_DB_URL=url)
    assert out.returncode == 0, out.stderr
    assert "read as cp1252, delimiter ';'" in out.stdout
    assert "2 rows: 2 stored, 0 already stored, 0 rejected" in out.stdout
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = conn.execute(sa.text("SELECT customer_id FROM events ORDER BY ts")).scalars()
        assert list(names) == ["Jos\u00e9", "M\u00fcller"]
    engine.dispose()


def test_a_csv_that_is_not_in_the_encoding_given_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes(LATIN_1)
    out = _run(
        ["import", "latin.csv", "--type", "purchase", "--encoding", "utf-8"],
        tmp_path,
        CHURNWATCH_DB_URL=_sqlite(tmp_path),
    )
    _failed(out, USAGE, "latin.csv line 2 is not UTF-8 text", "--encoding", "nothing was stored")
    unknown = _run(["import", "latin.csv", "--encoding", "klingon"], tmp_path)
    _failed(unknown, USAGE, "unknown encoding 'klingon'")


def test_an_import_that_rejects_every_row_fails_and_counts_every_field(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(
        "customer_id,ts,amount\nc1,yesterday,abc\nc2,2026-01-01T00:00:00Z,xyz\n"
    )
    out = _run(
        ["import", "bad.csv", "--type", "purchase", "--set", "currency=EUR,channel=web"],
        tmp_path,
        CHURNWATCH_DB_URL=_sqlite(tmp_path),
    )
    # not only the first failing field of a row (amount), but every one, with its rows
    _failed(
        out,
        USAGE,
        "every one of its 2 rows was rejected",
        "amount: 2 rows; order_id: 2 rows; ts: 1 row",
    )
    assert "rejected rows per failing field: amount 2, order_id 2, ts 1" in out.stdout


def test_dashboard_export_to_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    out = _run(["dashboard", "export", "--out", "a-file/dashboards"], tmp_path)
    _failed(out, UNAVAILABLE, "cannot write the dashboards to a-file/dashboards")


def test_a_sqlite_folder_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    folder = tmp_path / "no" / "such"
    out = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL=f"sqlite:///{folder / 'x.db'}")
    _failed(out, USAGE, f"the store's folder {folder} does not exist", "mkdir -p")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--precision-floor", "1.5", "the precision floor is a share from 0 to 1 (got 1.5)"),
        ("--contact-cost", "-3", "the contact cost is an amount of 0 or more (got -3)"),
        ("--winback-rate", "2", "the win-back rate is a share from 0 to 1 (got 2)"),
        ("--horizon-days", "0", "0 is not above 0"),
    ],
)
def test_a_backtest_setting_out_of_range(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    # refused before the store is opened: this one could not be
    out = _run(["replay", option, value], tmp_path, CHURNWATCH_DB_URL="notaurl")
    _failed(out, USAGE, option, message)


def test_a_from_later_than_the_to(tmp_path: Path) -> None:
    out = _run(
        ["replay", "--from", "2026-03-01", "--to", "2026-01-01"],
        tmp_path,
        CHURNWATCH_DB_URL=_sqlite(tmp_path),
    )
    _failed(out, USAGE, "--from 2026-03-01T00:00:00+00:00 is not before --to 2026-01-01")
    assert "horizon" not in out.stderr


def test_train_with_a_negative_horizon(tmp_path: Path) -> None:
    out = _run(["train", "--horizon-days", "-1"], tmp_path, CHURNWATCH_DB_URL=_sqlite(tmp_path))
    _failed(out, USAGE, "--horizon-days must be more than 0 (got -1)")
    assert "no customer active" not in out.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["simulate", "--out", "x.jsonl", "--churn-share", "1.5"], "--churn-share"),
        (["simulate", "--out", "x.jsonl", "--events", "0"], "--events"),
        (["topics", "create", "--partitions", "0"], "--partitions"),
        (["import", "x.csv", "--far-margin", "-1"], "--far-margin"),
    ],
)
def test_counts_and_shares_out_of_range(tmp_path: Path, args: list[str], option: str) -> None:
    (tmp_path / "x.csv").write_text("a\n1\n")
    _failed(_run(args, tmp_path), USAGE, option)


def test_verbose_and_churnwatch_debug_show_the_traceback(tmp_path: Path) -> None:
    plain = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL="foo://bar")
    verbose = _run(["--verbose", *AS_OF], tmp_path, CHURNWATCH_DB_URL="foo://bar")
    debug = _run(AS_OF, tmp_path, CHURNWATCH_DB_URL="foo://bar", CHURNWATCH_DEBUG="1")
    for out in (verbose, debug):
        # the same code and message, with the traceback before them
        assert out.returncode == plain.returncode == USAGE
        assert "Traceback" in out.stderr
        assert out.stderr.endswith(plain.stderr)
