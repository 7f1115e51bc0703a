"""Tables for people: Markdown text, or drawn by rich on a terminal.

rich fits a table to the terminal's width; when stdout is a pipe or a file it
assumes 80 columns and cuts cells short ("serv…"). So a table is drawn only on
a terminal, and printed as plain Markdown everywhere else, where nothing is cut
and the text can be pasted, grepped or read by a program.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TextIO


def markdown(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """The lines of a Markdown table: the header, its rule, one line per row."""
    lines = [_line(headers), "|" + "---|" * len(headers)]
    lines += [_line(row) for row in rows]
    return lines


def _line(cells: Sequence[object]) -> str:
    # a pipe inside a cell would end it early
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def show(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    file: TextIO | None = None,
) -> None:
    """Print a table: drawn by rich on a terminal, plain Markdown otherwise (never cut)."""
    out = file if file is not None else sys.stdout
    if not out.isatty():
        text = ([title, ""] if title else []) + markdown(headers, rows)
        # a blank line ends the table, so that text after it is not read as a row
        print("\n".join(text) + "\n", file=out)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text, not markup: a cell such as "[high]" is shown as written
    table = Table(title=None if title is None else Text(title))
    for header in headers:
        # fold a cell that is too wide instead of cutting it
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(str(c)) for c in row))
    Console(file=out).print(table)
