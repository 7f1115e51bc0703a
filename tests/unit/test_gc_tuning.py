"""The collector setting of the worker's processes, checked in a fresh interpreter each."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from churnwatch.settings import Settings

PROBE = """
import gc, json, sys
from churnwatch.gc_tuning import tune_for_long_run
before = gc.get_threshold()
kept = [[n] for n in range(1000)]  # start-up's objects, to be frozen
tune_for_long_run(int(sys.argv[1]))
print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count() >= len(kept)]))
"""


def _probe(threshold: int) -> list:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(threshold)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_the_youngest_generation_is_raised_and_start_up_frozen() -> None:
    before, after, frozen = _probe(50_000)
    assert after == [50_000, *before[1:]]
    assert frozen


def test_zero_leaves_the_collector_as_python_sets_it() -> None:
    before, after, frozen = _probe(0)
    assert after == before
    assert not frozen


@pytest.mark.parametrize("value", ["50", "20000000", "-1"])
def test_a_threshold_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CHURNWATCH_GC_THRESHOLD", value)
    with pytest.raises(ValueError, match=f"the gc threshold must be 0 .* \\(got {value}\\)"):
        Settings.from_env()


def test_the_threshold_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().gc_threshold == 50_000
    monkeypatch.setenv("CHURNWATCH_GC_THRESHOLD", "0")
    assert Settings.from_env().gc_threshold == 0
