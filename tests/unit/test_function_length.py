"""No function of ``churnwatch.streams`` is longer than :data:`MAX_LINES`.

Why 80: a function of that length still reads on one screen, with its callers'
names in view. The worker's app and its web views once grew into two functions
of over 230 lines each, whose nested agents, timers and views shared closure
variables (issue 33); this keeps them apart as methods and small views. Every
module of the package is checked, and nothing is excepted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import churnwatch.streams

#: the most lines a function may span, from its ``def`` to its last line (decorators aside)
MAX_LINES = 80
STREAMS = Path(churnwatch.streams.__file__).parent


def _lengths(source: str) -> list[tuple[str, int, int]]:
    """``(name, first line, lines)`` of every function and method in ``source``, nested ones too."""
    return [
        (node.name, node.lineno, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_the_package_has_modules_to_check() -> None:
    assert {"app.py", "web.py"} <= {path.name for path in STREAMS.glob("*.py")}


def test_no_function_in_streams_is_longer_than_80_lines() -> None:
    too_long = [
        f"{path.name}:{line} {name} ({lines} lines)"
        for path in sorted(STREAMS.glob("*.py"))
        for name, line, lines in _lengths(path.read_text(encoding="utf-8"))
        if lines > MAX_LINES
    ]
    assert not too_long, f"longer than {MAX_LINES} lines: {too_long}"


def test_a_long_function_is_measured_whole() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert _lengths(f"def f():\n{body}\n") == [("f", 1, MAX_LINES + 1)]
