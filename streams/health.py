"""Whether a worker makes progress: the logic behind ``GET /health``.

A worker that answers HTTP is not therefore healthy: it is healthy when its
intake agent runs and what waits for it gets stored. ``/health`` answers 503
when the agent has died, when ``FAILED_STEPS_UNHEALTHY`` store steps in a
row have failed, or when records have waited ``stall_s`` seconds with no
batch committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from churnwatch.times import utcnow

#: this many failed store steps in a row make the worker unhealthy
FAILED_STEPS_UNHEALTHY = 3


@dataclass
class Health:
    """Progress of one worker, updated by its agents, read by ``/health``."""

    #: records waiting this long (seconds) with no commit: stalled
    stall_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    agent_running: bool = False
    #: store steps that failed since the last one that committed
    failed_in_row: int = 0
    last_commit_at: datetime | None = None
    #: records consumed or held, not yet committed (lag comes from :attr:`lag`)
    held: int = 0
    #: consumer lag per ``(topic, partition)``
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    #: since when (``clock``) records have waited with no commit in between
    _waiting_since: float | None = None

    def consumed(self, held: int) -> None:
        """Records were taken in and ``held`` now wait to be committed."""
        self.held = held
        if held and self._waiting_since is None:
            self._waiting_since = self.clock()

    def committed(self, held: int) -> None:
        """A store step committed; ``held`` records still wait."""
        self.failed_in_row = 0
        self.held = held
        self.last_commit_at = utcnow()
        self._waiting_since = self.clock() if self.waiting else None

    def failed(self) -> None:
        """A store step failed (it is retried)."""
        self.failed_in_row += 1

    @property
    def waiting(self) -> int:
        """Records that wait: held ones and the consumer lag."""
        return self.held + sum(max(lag, 0) for lag in self.lag.values())

    def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status (200 or 503) and the body of ``/health``."""
        now = self.clock()
        if self.waiting and self._waiting_since is None:
            # lag seen before any record came in: it waits from now on
            self._waiting_since = now
        waited = 0.0 if self._waiting_since is None else now - self._waiting_since
        problems = []
        if not self.agent_running:
            problems.append("the intake agent is not running")
        if self.failed_in_row >= FAILED_STEPS_UNHEALTHY:
            problems.append(f"{self.failed_in_row} store steps in a row failed")
        if self.waiting and waited > self.stall_s:
            problems.append(f"{self.waiting} records waited {waited:.0f} s with no commit")
        body = {
            "healthy": not problems,
            "problems": problems,
            "agent_running": self.agent_running,
            "last_commit_at": self.last_commit_at.isoformat() if self.last_commit_at else None,
            "lag": sum(max(lag, 0) for lag in self.lag.values()),
            "held": self.held,
            "failed_steps_in_row": self.failed_in_row,
            "waiting_s": round(waited, 1),
        }
        return (503 if problems else 200), body
