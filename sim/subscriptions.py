"""A seeded subscription business: monthly payments, behaviour, and when each ends.

Each subscriber pays a plan's price every :data:`PERIOD_DAYS` (give or take a
few hours, as a card is charged), from their signup until they cancel. Some
were subscribed before the history starts (their signup is on their profile),
the others join during it. At each renewal a subscriber cancels with their own
chance, drawn from a Beta distribution (so some are far likelier to leave than
others) and falling with every month they stay: the population's retention
rises with tenure, as Fader & Hardie's subscription data show.

Behaviour comes as the events the retail simulator emits (logins, email opens,
support contacts, complaints and their resolutions, a profile). Most of those
who cancel drift first: in the 20 to 90 days before the end their logins fade,
and support contacts and complaints rise. Some cancel without warning, and
some who stay go through a quiet spell of their own, so behaviour is evidence,
not a give-away. The true end of each subscription is kept (:class:`SubscriptionTruth`).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: days between two payments of a subscription
PERIOD_DAYS = 30.0
#: plans: name, monthly price and share of subscribers
PLANS = (("basic", 9.99, 0.5), ("standard", 19.99, 0.35), ("premium", 39.99, 0.15))
#: Beta(a, b) of the chance to cancel at the first renewal (mean about 9 %)
_CANCEL_BETA = (0.9, 9.0)
#: each month stayed multiplies a subscriber's chance to cancel by this
_CANCEL_DECAY = 0.96
#: share of subscribers already paying when the history starts
_EXISTING_SHARE = 0.5
#: share of those who cancel that drift first, and the drift's length in days
_DRIFT_SHARE = 0.75
_DRIFT_DAYS = (20.0, 90.0)
#: chance per month that a subscriber who stays goes through a quiet spell
_QUIET_PER_MONTH = 0.03
_QUIET_DAYS = (20.0, 60.0)
#: behaviour per day at full engagement; a subscriber's own rate is spread around it
_LOGINS_PER_DAY = 0.12
_EMAIL_OPENS_PER_DAY = 0.03
_CONTACTS_PER_DAY = 0.006
_COMPLAINTS_PER_DAY = 0.002
_COMPLAINT_CATEGORIES = ("service_quality", "product", "price", "other")


@dataclass(frozen=True, slots=True)
class SubscriptionTruth:
    """Ground truth for one subscriber."""

    customer_id: str
    plan: str
    price: float
    signup: str
    #: the renewal that was not paid; ``None`` while the subscription runs past the history
    end: str | None
    #: whether their behaviour drifted before the end
    drifted: bool


@dataclass(slots=True)
class _Subscriber:
    customer_id: str
    plan: str
    price: float
    signup: datetime
    end: datetime | None
    drift_start: datetime | None
    quiet: list[tuple[datetime, datetime]]
    engagement: float


class SubscriptionSimulation:
    """Subscribers over ``[start, end)`` with a fixed seed."""

    def __init__(self, customers: int, start: datetime, end: datetime, *, seed: int = 11) -> None:
        if customers < 1:
            raise ValueError("customers must be at least 1")
        if end <= start:
            raise ValueError("end must be after start")
        self.start, self.end, self.seed = start, end, seed
        self.rng = random.Random(seed)
        self.subscribers = [self._new(i) for i in range(customers)]

    def _new(self, index: int) -> _Subscriber:
        rng = self.rng
        span = (self.end - self.start).total_seconds()
        if rng.random() < _EXISTING_SHARE:
            signup = self.start - timedelta(days=rng.uniform(0, 730))
        else:
            signup = self.start + timedelta(seconds=rng.uniform(0, 0.9 * span))
        plan, price, _ = rng.choices(PLANS, weights=[p[2] for p in PLANS])[0]
        chance = rng.betavariate(*_CANCEL_BETA)
        # renewals until one is not paid; the chance to cancel falls month by month
        renewal, months = signup, 0
        while True:
            renewal += timedelta(days=PERIOD_DAYS)
            months += 1
            if renewal >= self.end + timedelta(days=365):
                stop = None  # still subscribed well past the history
                break
            if rng.random() < chance * _CANCEL_DECAY ** (months - 1):
                stop = renewal
                break
        drift_start = None
        if stop is not None and rng.random() < _DRIFT_SHARE:
            drift_start = stop - timedelta(days=rng.uniform(*_DRIFT_DAYS))
        quiet = []
        month = max(signup, self.start)
        while month < min(stop or self.end, self.end):
            if rng.random() < _QUIET_PER_MONTH:
                quiet.append((month, month + timedelta(days=rng.uniform(*_QUIET_DAYS))))
            month += timedelta(days=PERIOD_DAYS)
        return _Subscriber(
            customer_id=f"s{self.seed}-{index:06d}",
            plan=plan,
            price=price,
            signup=signup,
            end=stop,
            drift_start=drift_start,
            quiet=quiet,
            engagement=rng.lognormvariate(0.0, 0.5),
        )

    def truth(self) -> list[SubscriptionTruth]:
        """Ground truth for every subscriber; an end past the history counts as none."""
        return [
            SubscriptionTruth(
                customer_id=s.customer_id,
                plan=s.plan,
                price=s.price,
                signup=s.signup.isoformat(),
                end=s.end.isoformat() if s.end is not None and s.end < self.end else None,
                drifted=s.drift_start is not None and s.drift_start < self.end,
            )
            for s in self.subscribers
        ]

    def _drift(self, s: _Subscriber, at: datetime) -> float:
        """0 before the drift, rising to 1 at the end of the subscription."""
        if s.drift_start is None or s.end is None or at < s.drift_start:
            return 0.0
        return min(1.0, (at - s.drift_start) / (s.end - s.drift_start))

    def _times(
        self, first: datetime, last: datetime, peak: float, rate: Callable[[datetime], float]
    ) -> Iterator[datetime]:
        """A Poisson process on ``[first, last)`` at ``rate`` per day (at most ``peak``).

        Candidates at the peak rate are kept with chance ``rate / peak`` (thinning),
        which is exact and needs no day-by-day loop.
        """
        at = first
        while True:
            at += timedelta(days=self.rng.expovariate(peak))
            if at >= last:
                return
            if self.rng.random() * peak < rate(at):
                yield at

    def _subscriber_events(self, s: _Subscriber) -> list[tuple[datetime, str, dict[str, Any]]]:
        """One subscriber's events as ``(time, type, fields)``, unordered."""
        rng = self.rng
        first = max(s.signup, self.start)
        last = min(s.end, self.end) if s.end is not None else self.end
        out: list[tuple[datetime, str, dict[str, Any]]] = []
        out.append(
            (
                first + timedelta(seconds=rng.uniform(0, 60)),
                "profile",
                {"signup_ts": s.signup.isoformat(timespec="seconds"), "segment": s.plan},
            )
        )
        paid = s.signup
        while paid < last:
            if paid >= self.start:
                fields = {
                    "amount": s.price,
                    "currency": "EUR",
                    "order_id": f"{s.customer_id}-{paid:%Y%m%d}",
                    "channel": "online",
                    "category": "subscription",
                }
                # a card is charged within a few hours of the billing time
                out.append((paid + timedelta(hours=rng.uniform(0, 6)), "purchase", fields))
            paid += timedelta(days=PERIOD_DAYS)

        def quiet(at: datetime) -> bool:
            return any(a <= at < b for a, b in s.quiet)

        def fading(at: datetime) -> float:
            """Engagement left: drift takes up to 85 % away, a quiet spell 70 %."""
            return (1 - 0.85 * self._drift(s, at)) * (0.3 if quiet(at) else 1.0)

        def rising(at: datetime) -> float:
            """More contacts and complaints: up to four times as many near the end."""
            return 1 + 3 * self._drift(s, at)

        logins = _LOGINS_PER_DAY * s.engagement
        for at in self._times(first, last, logins, lambda t: logins * fading(t)):
            out.append((at, "login", {}))
        opens = _EMAIL_OPENS_PER_DAY * s.engagement
        for at in self._times(first, last, opens, lambda t: opens * fading(t)):
            out.append((at, "email_open", {}))
        contacts, complaints = _CONTACTS_PER_DAY, _COMPLAINTS_PER_DAY
        for at in self._times(first, last, 4 * contacts, lambda t: contacts * rising(t)):
            answered = rng.random() < 0.9 - 0.4 * self._drift(s, at)
            out.append((at, "support_contact", {"answered": answered}))
        for at in self._times(first, last, 4 * complaints, lambda t: complaints * rising(t)):
            complaint_id = f"{s.customer_id}-k{len(out)}"
            upset = self._drift(s, at) > 0.3
            out.append(
                (
                    at,
                    "complaint_opened",
                    {
                        "complaint_id": complaint_id,
                        "category": rng.choice(_COMPLAINT_CATEGORIES),
                        "severity": rng.randint(2, 3) if upset else rng.randint(1, 2),
                    },
                )
            )
            resolved = at + timedelta(days=rng.uniform(5, 20) if upset else rng.uniform(0.2, 4))
            if resolved < self.end:
                rating = rng.randint(1, 2) if upset else rng.randint(3, 5)
                fields = {"complaint_id": complaint_id, "satisfaction": rating}
                out.append((resolved, "complaint_resolved", fields))
        return out

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event of every subscriber within the history, in time order."""
        streams = []
        for index, s in enumerate(self.subscribers):
            own = sorted(self._subscriber_events(s), key=lambda e: e[0])
            # (time, subscriber, own order): never a tie left to compare the fields by
            streams.append([(e[0], index, n, e[1], e[2]) for n, e in enumerate(own)])
        for serial, (at, index, _, type_, fields) in enumerate(heapq.merge(*streams)):
            yield {
                "event_id": f"sub{self.seed}-{serial:09d}",
                "customer_id": self.subscribers[index].customer_id,
                "ts": at.isoformat(timespec="milliseconds"),
                "type": type_,
                **fields,
            }
