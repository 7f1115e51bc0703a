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
    """Print the views as tables on the terminal."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for view, rows in report.items():
        if not rows:
            console.print(f"{view}: no rows yet")
            continue
        table = Table(title=view)
        for column in rows[0]:
            table.add_column(
                column, justify="right" if column not in ("reason", "action") else "left"
            )
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
