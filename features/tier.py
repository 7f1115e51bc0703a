"""Value tier (docs/features.md), relative to the current customer population.

Each buying customer is ranked against the others on **R** (time of the last
purchase: later is better), **F** (purchases in 365 days) and **M** (net spend
in 365 days). Their mean percentile decides the tier: at least
``HIGH_RANK`` is high-value, at least ``POTENTIAL_RANK`` potential, the rest
general. A customer with no purchase in a year is general.

The ranks come from exact counts of the population's values in small bins
(2 % wide for money), so the tiers move with the population without any fixed
spend cut-off. Counts change with every customer update, but ranks are read
from the snapshot taken by :meth:`Population.rerank` (the stream loop takes one
per day of event time): a tier then depends on the day, not on how the events
of that day were batched, and reading one costs a binary search.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from churnwatch.features.state import DAY_S

HIGH_RANK: Final = 0.8
POTENTIAL_RANK: Final = 0.5
TIERS = ("high", "potential", "general")


class Distribution:
    """How many members hold each bin; mid-ranks from the last snapshot."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._total = 0
        # the snapshot: sorted bins, members below each, members in each
        self._bins: list[int] = []
        self._below: list[int] = []
        self._here: list[int] = []
        self._ranked_total = 0

    def add(self, value_bin: int, delta: int = 1) -> None:
        """Count one more (or, with ``delta=-1``, one fewer) member in ``value_bin``."""
        count = self._counts.get(value_bin, 0) + delta
        if count:
            self._counts[value_bin] = count
        else:
            del self._counts[value_bin]
        self._total += delta

    def snapshot(self) -> None:
        """Take the current counts as the ones :meth:`rank` reads."""
        self._bins = sorted(self._counts)
        self._here = [self._counts[b] for b in self._bins]
        running, self._below = 0, []
        for count in self._here:
            self._below.append(running)
            running += count
        self._ranked_total = self._total

    def snapshot_form(self) -> list[list[int]]:
        """The snapshot :meth:`rank` reads, JSON-ready: its bins and their members."""
        return [list(self._bins), list(self._here)]

    def restore_snapshot(self, form: Sequence[Sequence[int]]) -> None:
        """Take a snapshot saved by :meth:`snapshot_form` as the one :meth:`rank` reads.

        The counts are left alone: they follow the members, the snapshot the day.
        """
        bins, here = form
        self._bins, self._here = [int(b) for b in bins], [int(n) for n in here]
        running, self._below = 0, []
        for count in self._here:
            self._below.append(running)
            running += count
        self._ranked_total = running

    def rank(self, value_bin: int) -> float:
        """Share of the snapshot's members below ``value_bin``, plus half of those in it."""
        if not self._ranked_total:
            return 0.5
        i = bisect.bisect_left(self._bins, value_bin)
        if i == len(self._bins):
            return 1.0
        here = self._here[i] if self._bins[i] == value_bin else 0
        return (self._below[i] + here / 2) / self._ranked_total


@dataclass(frozen=True, slots=True)
class RFM:
    """A customer's tier inputs."""

    last_purchase_s: float | None
    frequency_365d: int
    monetary_365d: float

    def bins(self) -> tuple[int, int, int] | None:
        """Histogram bins, or ``None`` for a customer outside the buying population."""
        if self.last_purchase_s is None or self.frequency_365d <= 0:
            return None
        money = round(math.log1p(max(self.monetary_365d, 0.0)) * 50)
        return int(self.last_purchase_s // DAY_S), self.frequency_365d, money


class Population:
    """The buying customers' R, F and M distributions."""

    def __init__(self) -> None:
        self._dists = (Distribution(), Distribution(), Distribution())
        self._members: dict[str, tuple[int, int, int]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def update(self, customer_id: str, rfm: RFM) -> None:
        """Record the customer's current values (replacing earlier ones)."""
        old = self._members.pop(customer_id, None)
        if old is not None:
            for dist, b in zip(self._dists, old, strict=True):
                dist.add(b, -1)
        new = rfm.bins()
        if new is not None:
            self._members[customer_id] = new
            for dist, b in zip(self._dists, new, strict=True):
                dist.add(b)

    def rerank(self) -> None:
        """Snapshot the current values: tiers are read against them until the next call."""
        for dist in self._dists:
            dist.snapshot()

    def ranking(self) -> list[list[list[int]]]:
        """The R, F and M snapshots that tiers are read against now, JSON-ready."""
        return [dist.snapshot_form() for dist in self._dists]

    def restore_ranking(self, form: Sequence[Sequence[Sequence[int]]]) -> None:
        """Read tiers against snapshots saved by :meth:`ranking`, not today's counts.

        A restarted timeline then ranks exactly as the one that saved them did,
        though its members have moved on since the snapshot was taken.
        """
        for dist, dist_form in zip(self._dists, form, strict=True):
            dist.restore_snapshot(dist_form)

    def value_score(self, customer_id: str) -> float | None:
        """Mean R, F and M percentile in [0, 1] (snapshot ranks), or ``None`` outside."""
        bins = self._members.get(customer_id)
        if bins is None:
            return None
        ranks = [dist.rank(b) for dist, b in zip(self._dists, bins, strict=True)]
        return sum(ranks) / 3

    def tier(self, customer_id: str) -> str:
        """``high``, ``potential`` or ``general``."""
        score = self.value_score(customer_id)
        if score is None:
            return "general"
        if score >= HIGH_RANK:
            return "high"
        if score >= POTENTIAL_RANK:
            return "potential"
        return "general"
