"""How the command line names a failure: the exit code of each kind of error."""

from __future__ import annotations

import sqlalchemy as sa

from churnwatch.cli.failures import Code, Failure, explain
from churnwatch.topics import BrokerUnreachable


def test_each_kind_of_error_has_its_code() -> None:
    given = Failure("bad --x", Code.USAGE)
    assert explain(given) is given
    assert explain(BrokerUnreachable("no Kafka broker answered")).code == Code.UNAVAILABLE
    refused = sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused"))
    assert explain(refused).code == Code.UNAVAILABLE
    assert "refused" in explain(refused).message
    assert explain(sa.exc.ArgumentError("Could not parse")).code == Code.USAGE
    unwritable = FileNotFoundError(2, "No such file or directory", "/proc/nope")
    assert explain(unwritable).message == "cannot use /proc/nope: No such file or directory"
    lost = explain(ConnectionResetError("reset by peer"))
    assert (lost.code, lost.message) == (Code.UNAVAILABLE, "cannot connect: reset by peer")


def test_an_error_nobody_expects_is_a_bug_with_its_first_line() -> None:
    failure = explain(ZeroDivisionError("division by zero\nmore"))
    assert failure.code == Code.INTERNAL == 70
    assert failure.message == "unexpected ZeroDivisionError: division by zero"
    assert failure.hint is not None and "--verbose" in failure.hint
