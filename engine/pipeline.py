"""The intake and the commit in sequence: how offline tools and tests run a batch.

The worker drives the two steps apart (it holds accepted events for event-time
order in between); :class:`Pipeline` runs them back to back with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from churnwatch.alerts.config import Playbook, Policy
from churnwatch.engine.commit import Committed, Committer
from churnwatch.engine.intake import Intake
from churnwatch.models.rule import RuleScorer
from churnwatch.models.scoring import Scorer
from churnwatch.records import RawRecord
from churnwatch.times import utcnow


@dataclass
class Processed(Committed):
    """A committed batch, with the intake's dead letters first and what it re-keys."""

    misrouted: list[tuple[str, RawRecord]] = field(default_factory=list)


class Pipeline:
    """Validate, then store and count, batches of raw records."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_future_s: float,
        allowed_lateness_s: float,
        clock: Callable[[], datetime] = utcnow,
        scorer: Callable[[], Scorer] = RuleScorer,
        policy: Policy | None = None,
        playbook: Playbook | None = None,
        partitions: int = 1,
        cache_customers: int = 100_000,
    ) -> None:
        self.intake = Intake(max_future_s=max_future_s, clock=clock)
        self.committer = Committer(
            engine,
            allowed_lateness_s=allowed_lateness_s,
            clock=clock,
            scorer=scorer,
            policy=policy,
            playbook=playbook,
            partitions=partitions,
            cache_customers=cache_customers,
        )

    def process(self, records: Sequence[RawRecord]) -> Processed:
        """One batch through the intake and the commit."""
        decoded = self.intake.decode(records)
        committed = self.committer.commit(decoded.accepted)
        result = Processed(**vars(committed), misrouted=decoded.misrouted)
        result.dead_letters = [*decoded.dead_letters, *committed.dead_letters]
        return result

    def reload(self, partitions: Sequence[int] | None = None) -> int:
        """Read the state of ``partitions`` (default: all) from the store again."""
        return self.committer.reload(partitions)
