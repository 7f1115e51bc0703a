"""The compiled build (churnwatch.native) and the pure-Python source give identical results.

Each build replays the same simulated history in a process of its own
(:mod:`tests.native_probe`): the alerts, tasks, changes, folded states and feature
rows must be the same bytes.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from churnwatch import native
from tests.cli_helpers import clean_env


def _probe(**env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.native_probe"],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        check=True,
    )
    return orjson.loads(done.stdout.splitlines()[-1])


def test_the_compiled_build_replays_exactly_as_the_pure_source() -> None:
    if not native.check()[0]:
        pytest.skip(f"no compiled build to compare: {native.check()[1]}")
    compiled = _probe(CHURNWATCH_PURE="0")
    pure = _probe(CHURNWATCH_PURE="1")
    assert (compiled["build"], pure["build"]) == ("compiled", "pure")
    assert compiled["events"] == pure["events"] > 10_000
    assert len(pure["alerts"]) > 20 and len(pure["changes"]) > 100
    for part in ("alerts", "tasks", "changes", "states", "rows"):
        assert compiled[part] == pure[part], part
