"""Grafana's PostgreSQL macros and template variables, expanded as Grafana does.

Used to run every SQL panel against a real database in the tests, with the
time range, interval and variable values a dashboard user would pick:

- ``$__timeFilter(col)`` → ``col BETWEEN '<from>' AND '<to>'``
- ``$__timeFrom()`` / ``$__timeTo()`` → ``'<from>'`` / ``'<to>'``
- ``$__timeGroup(col, 1d)`` → ``floor(extract(epoch from col)/86400)*86400``
- ``$__timeGroupAlias(col, 1d)`` → the same, ``AS "time"``
- ``$__interval`` → the interval, e.g. ``1d``
- ``$var`` / ``${var}`` → the selected values, quoted and comma-separated
  (Grafana's format for a multi-value variable of a SQL data source)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_MACRO = re.compile(r"\$__(timeFilter|timeFrom|timeTo|timeGroupAlias|timeGroup)\(([^()]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(?!__)(\w+)")


def interval_seconds(text: str) -> int:
    """``'5m'`` → 300; Grafana's interval notation."""
    match = re.fullmatch(r"\s*'?(\d+)([smhdw])'?\s*", text)
    if match is None:
        raise ValueError(f"not a Grafana interval: {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class QueryContext:
    """What a dashboard user has picked: time range, interval and variable values."""

    time_from: datetime
    time_to: datetime
    interval: str = "1d"
    variables: Mapping[str, Sequence[str]] = field(default_factory=dict)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _moment(at: datetime) -> str:
    return _quoted(at.isoformat().replace("+00:00", "Z"))


def expand(sql: str, ctx: QueryContext) -> str:
    """``sql`` with every macro and variable replaced, ready for PostgreSQL."""
    sql = sql.replace("$__interval", ctx.interval)

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        if name == "timeFilter":
            return f"{args[0]} BETWEEN {_moment(ctx.time_from)} AND {_moment(ctx.time_to)}"
        if name == "timeFrom":
            return _moment(ctx.time_from)
        if name == "timeTo":
            return _moment(ctx.time_to)
        step = interval_seconds(args[1])
        group = f"floor(extract(epoch from {args[0]})/{step})*{step}"
        return f'{group} AS "time"' if name == "timeGroupAlias" else group

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in ctx.variables:
            raise KeyError(f"the query uses ${name}, which has no value")
        return ",".join(_quoted(v) for v in ctx.variables[name])

    return _VARIABLE.sub(variable, _MACRO.sub(macro, sql))
