"""``churnwatch winback report``: the win-back views, read and printed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

VIEWS = ("winback_effectiveness", "winback_failures")


def _plain(value: Any) -> Any:
    # PostgreSQL returns NUMERIC (Decimal) for the ratios and means; SQLite floats
    if isinstance(value, float | Decimal):
        return round(float(value), 4)
    return value


def fetch(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of each win-back view, as plain dicts (numbers rounded to 4 places)."""
    out = {}
    with engine.connect() as conn:
        for view in VIEWS:
            rows = conn.execute(sa.text(f"SELECT * FROM {view} ORDER BY 1, 2, 3")).mappings()
            out[view] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return out


def render(report: dict[str, list[dict[str, Any]]]) -> None:
    """Print the views as tables: drawn on a terminal, Markdown through a pipe (never cut)."""
    from churnwatch.tables import show

    for view, rows in report.items():
        if not rows:
            print(f"{view}: no rows yet")
            continue
        cells = [["" if v is None else str(v) for v in row.values()] for row in rows]
        show(list(rows[0]), cells, title=view)
