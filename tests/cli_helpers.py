"""Running the `churnwatch` command as a user does, in a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without its ``CHURNWATCH_*`` settings, but for the clock
    every test runs on (tests/reference.py) and the build (``CHURNWATCH_PURE``: the pure
    pass of ``make test`` runs its commands pure too), plus ``settings``."""
    kept = ("CHURNWATCH_CLOCK_OFFSET_S", "CHURNWATCH_PURE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNWATCH_") or k in kept}
    return {**env, **settings}


def run_cli(
    args: list[str], cwd: Path, timeout: float = 300, **settings: str
) -> subprocess.CompletedProcess:
    """``churnwatch ARGS`` in ``cwd`` with :func:`clean_env` and ``settings``."""
    return subprocess.run(
        [sys.executable, "-m", "churnwatch", *args],
        cwd=cwd,
        env=clean_env(**settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
