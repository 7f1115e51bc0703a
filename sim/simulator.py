"""A seeded synthetic customer population and the events it produces.

Customers have a value tier and habits (purchase rate, basket, engagement,
complaints). Within a tier, purchase and engagement rates vary from customer to
customer as a Gamma distribution (as the BTYD models assume), so some loyal
customers buy rarely and fall silent for months. A share of them drifts toward
churn for one of the four reasons (docs/alerts.md); their lifetimes end at any
time from the first fifth of the history on, so the churn rate is about
constant over time and the calendar alone predicts nothing. Each reason leaves
its own trace in the events, at a strength that differs from one churner to the
next, over a background in which loyal customers complain too, about price and
communication as well:

- ``service_quality``: product/service complaints, slow resolutions, low ratings;
- ``competitor``: price complaints and a sharp drop in spend while logins go on;
- ``needs_changed``: frequency and basket fade, categories shift, no complaints;
- ``communication``: support contacts left unanswered, emails unopened, silence.

After the churn date a churner buys nothing more. The true reason and churn
date are kept as ground truth (:class:`Truth`). Events come out in event-time
order; :func:`records` can mix in bad records of every kind the worker must
dead-letter.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from churnwatch.events import TOPIC_OF_TYPE
from churnwatch.features.tier import TIERS

REASONS = ("service_quality", "competitor", "needs_changed", "communication")
CATEGORIES = ("grocery", "electronics", "fashion", "home", "beauty", "sports")
DAY = timedelta(days=1)

# Per tier: share of customers, purchases/day, mean basket, engagement/day.
_TIER_HABITS: dict[str, tuple[float, float, float, float]] = {
    "high": (0.15, 0.12, 160.0, 0.45),
    "potential": (0.30, 0.06, 80.0, 0.30),
    "general": (0.55, 0.03, 40.0, 0.15),
}
_BASE_COMPLAINTS_PER_DAY = 0.004
#: the shape of the Gamma distribution of rates within a tier (mean 1, CV 0.58)
_RATE_SHAPE = 3.0
#: what loyal customers complain about: every category, price and communication too
_BACKGROUND_CATEGORIES = (
    "service_quality",
    "product",
    "delivery",
    "other",
    "other",
    "price",
    "communication",
)
_SURVEYS_PER_DAY = 0.01
_ENGAGEMENT_MIX = (
    ("login", 0.45),
    ("email_open", 0.2),
    ("email_click", 0.08),
    ("campaign_participation", 0.06),
    ("member_event", 0.04),
    ("points_earned", 0.1),
    ("points_redeemed", 0.04),
    ("support_contact", 0.03),
)
#: Industries, and how they are spread among the customers who churn and those who stay:
#: hospitality loses about half its customers, healthcare one in six, so one set of
#: thresholds cannot suit them all (``[[segment_thresholds]]`` in the alert policy).
_INDUSTRY_MIX = {
    "retail": (0.35, 0.25),
    "hospitality": (0.30, 0.12),
    "healthcare": (0.15, 0.35),
    "manufacturing": (0.20, 0.28),
}
#: a customer's segment by value tier: (enterprise, small business) weights
_SEGMENT_MIX = {"high": (0.7, 0.3), "potential": (0.3, 0.7), "general": (0.1, 0.9)}
#: Mean events per customer and day, used to size a population for N events.
MEAN_EVENTS_PER_CUSTOMER_DAY = sum(
    share * (rate + engagement + _BASE_COMPLAINTS_PER_DAY * 2 + _SURVEYS_PER_DAY)
    for share, rate, _basket, engagement in _TIER_HABITS.values()
)

BAD_KINDS = (
    "not_json",
    "not_object",
    "missing_customer_id",
    "wrong_type",
    "negative_amount",
    "unknown_type",
    "far_future",
    "duplicate_event_id",
    "too_late",
)
#: how far behind its customer's earlier event a ``too_late`` record is stamped
#: (beyond the largest allowed lateness, 365 days)
TOO_LATE_BY = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class Truth:
    """Ground truth for one simulated customer."""

    customer_id: str
    tier: str
    churns: bool
    reason: str | None
    drift_start: str | None
    churn_date: str | None


@dataclass(slots=True)
class _Customer:
    customer_id: str
    tier: str
    purchase_rate: float
    basket: float
    engagement_rate: float
    channel: str
    favourite: str
    reason: str | None
    drift_start: datetime | None
    churn_date: datetime | None
    #: how strongly the churn reason shows in the events, from 0.3 to 1
    strength: float = 1.0
    industry: str | None = None
    segment: str | None = None

    def drift(self, day: datetime) -> float:
        """0 before the drift starts, rising to 1 at the churn date."""
        if self.drift_start is None or self.churn_date is None or day < self.drift_start:
            return 0.0
        span = (self.churn_date - self.drift_start).total_seconds()
        return min(1.0, (day - self.drift_start).total_seconds() / span)

    def truth(self) -> Truth:
        return Truth(
            customer_id=self.customer_id,
            tier=self.tier,
            churns=self.reason is not None,
            reason=self.reason,
            drift_start=self.drift_start.isoformat() if self.drift_start else None,
            churn_date=self.churn_date.isoformat() if self.churn_date else None,
        )


@dataclass(frozen=True, slots=True)
class SimRecord:
    """One record to produce: topic, key, value, and what kind it is."""

    topic: str
    key: bytes | None
    value: bytes
    #: ``"valid"`` or one of :data:`BAD_KINDS`
    kind: str
    #: event time of the simulated event the record stems from
    at: datetime | None = None


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; fine for the small daily rates used here."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class Simulation:
    """A population over ``[start, end)`` with a fixed seed."""

    def __init__(
        self,
        customers: int,
        start: datetime,
        end: datetime,
        *,
        seed: int = 7,
        churn_share: float = 0.3,
    ) -> None:
        if customers < 1:
            raise ValueError("customers must be at least 1")
        if end <= start:
            raise ValueError("end must be after start")
        self.start, self.end, self.seed = start, end, seed
        self.rng = random.Random(seed)
        # segments draw from a generator of their own: the events stay those of the seed
        self.segment_rng = random.Random(f"{seed}-segments")
        self.customers = [self._new_customer(i, churn_share) for i in range(customers)]
        self._serial = 0

    def _new_customer(self, index: int, churn_share: float) -> _Customer:
        rng = self.rng
        tier = rng.choices(TIERS, weights=[_TIER_HABITS[t][0] for t in TIERS])[0]
        _, rate, basket, engagement = _TIER_HABITS[tier]
        reason = drift_start = churn_date = None
        span_days = (self.end - self.start).days
        strength = 1.0
        if rng.random() < churn_share and span_days >= 60:
            reason = rng.choice(REASONS)
            # The lifetime ends anywhere after the first fifth of the history; the
            # drift toward it lasts 30-90 days, shown at the customer's own strength.
            churn_date = self.start + timedelta(days=rng.uniform(0.2, 1.0) * span_days)
            drift_start = churn_date - timedelta(days=rng.uniform(30, 90))
            strength = rng.uniform(0.3, 1.0)
        # drawn given the churn: the same as churn rates per industry (Bayes), see _INDUSTRY_MIX
        pick = self.segment_rng.choices
        industry = pick(list(_INDUSTRY_MIX), [w[reason is None] for w in _INDUSTRY_MIX.values()])[0]
        segment = pick(("enterprise", "small_business"), _SEGMENT_MIX[tier])[0]
        return _Customer(
            customer_id=f"c{self.seed}-{index:06d}",
            tier=tier,
            purchase_rate=rate * rng.gammavariate(_RATE_SHAPE, 1 / _RATE_SHAPE),
            basket=basket * rng.uniform(0.7, 1.3),
            engagement_rate=engagement * rng.gammavariate(_RATE_SHAPE, 1 / _RATE_SHAPE),
            channel=rng.choice(("online", "online", "offline")),
            favourite=rng.choice(CATEGORIES),
            reason=reason,
            drift_start=drift_start,
            churn_date=churn_date,
            strength=strength,
            industry=industry,
            segment=segment,
        )

    def truth(self) -> list[Truth]:
        """Ground truth for every customer."""
        return [c.truth() for c in self.customers]

    def _event(self, customer: _Customer, at: datetime, type_: str, **fields: Any) -> dict:
        self._serial += 1
        return {
            "event_id": f"sim{self.seed}-{self._serial:09d}",
            "customer_id": customer.customer_id,
            "ts": at.isoformat(timespec="milliseconds"),
            "type": type_,
            **fields,
        }

    def _day_events(
        self, c: _Customer, day: datetime, pending: list[tuple[datetime, int, dict]]
    ) -> list[tuple[datetime, dict]]:
        """Events of one customer on one day; resolutions are scheduled ahead."""
        rng = self.rng
        p = c.drift(day)
        churned = c.churn_date is not None and day >= c.churn_date
        out: list[tuple[datetime, dict]] = []

        def at() -> datetime:
            return day + timedelta(seconds=rng.uniform(0, 86399))

        if day == self.start:
            when = at()
            signup = self.start - timedelta(days=rng.uniform(0, 1500))
            profile = self._event(
                c,
                when,
                "profile",
                signup_ts=signup.isoformat(timespec="seconds"),
                region=rng.choice(("north", "south", "east", "west")),
                industry=c.industry,
                segment=c.segment,
            )
            out.append((when, profile))

        # Purchases fade with the drift; a churned customer buys nothing.
        rate = 0.0 if churned else c.purchase_rate * (1 - 0.85 * p)
        # the reason's own trace, at this churner's strength
        q = p * c.strength
        basket = c.basket * (1 - (0.3 + 0.4 * c.strength if c.reason == "competitor" else 0.4) * p)
        for _ in range(_poisson(rng, rate)):
            category = c.favourite
            if c.reason == "needs_changed" and rng.random() < q:
                category = rng.choice(CATEGORIES)
            amount = round(max(1.0, rng.lognormvariate(math.log(basket), 0.4)), 2)
            when = at()
            out.append(
                (
                    when,
                    self._event(
                        c,
                        when,
                        "purchase",
                        amount=amount,
                        currency="EUR",
                        order_id=f"o{self._serial}",
                        channel=c.channel,
                        category=category,
                    ),
                )
            )
        if not churned and rng.random() < 0.02 * rate * 30:
            when = at()
            out.append(
                (
                    when,
                    self._event(
                        c,
                        when,
                        "refund",
                        amount=round(basket * rng.uniform(0.2, 0.8), 2),
                        currency="EUR",
                        order_id=f"r{self._serial}",
                        channel=c.channel,
                    ),
                )
            )

        # Engagement: competitor churners keep logging in; others go quiet.
        keep = 1.0 if c.reason == "competitor" else 1 - 0.8 * p
        if churned and c.reason != "competitor":
            keep = 0.1
        for _ in range(_poisson(rng, c.engagement_rate * keep)):
            mix: tuple[tuple[str, float], ...] = _ENGAGEMENT_MIX
            if c.reason == "communication" and p > 0:
                mix = (("support_contact", 0.5 * q), ("login", 1.0))
            kind = rng.choices([m[0] for m in mix], weights=[m[1] for m in mix])[0]
            when = at()
            fields: dict[str, Any] = {}
            if kind in ("points_earned", "points_redeemed"):
                fields["points"] = rng.randint(10, 500)
            elif kind == "support_contact":
                # communication churners are the ones nobody gets back to
                unheard = c.reason == "communication" and rng.random() < q
                fields["answered"] = not unheard and rng.random() < 0.9
            out.append((when, self._event(c, when, kind, **fields)))

        # Complaints: service and price churners complain, and wait longer.
        complaint_rate = _BASE_COMPLAINTS_PER_DAY
        categories: tuple[str, ...] = _BACKGROUND_CATEGORIES
        slow, unhappy = False, False
        if c.reason == "service_quality" and p > 0:
            complaint_rate += 0.06 * q
            categories = _BACKGROUND_CATEGORIES[:4]
            slow = unhappy = rng.random() < c.strength
        elif c.reason == "competitor" and p > 0:
            complaint_rate += 0.03 * q
            categories = ("price",)
        elif c.reason == "communication" and p > 0:
            complaint_rate += 0.02 * q
            categories = ("communication",)
            slow = True
        elif c.reason == "needs_changed" and p > 0:
            complaint_rate = 0.0
        if churned:
            complaint_rate *= 0.2
        for _ in range(_poisson(rng, complaint_rate)):
            when = at()
            complaint_id = f"k{self._serial}"
            out.append(
                (
                    when,
                    self._event(
                        c,
                        when,
                        "complaint_opened",
                        complaint_id=complaint_id,
                        category=rng.choice(categories),
                        severity=rng.randint(1, 3),
                    ),
                )
            )
            if c.reason == "communication" and q > 0.3 and rng.random() < 0.7:
                continue  # left unanswered
            delay = timedelta(days=rng.uniform(5, 25) if slow else rng.uniform(0.1, 3))
            rating = rng.randint(1, 2) if unhappy else rng.randint(3, 5)
            resolved = self._event(
                c,
                when + delay,
                "complaint_resolved",
                complaint_id=complaint_id,
                satisfaction=rating,
            )
            heapq.heappush(pending, (when + delay, self._serial, resolved))

        if not churned and rng.random() < _SURVEYS_PER_DAY:
            when = at()
            low = c.reason is not None and p > 0.3
            out.append(
                (
                    when,
                    self._event(
                        c,
                        when,
                        "survey_response",
                        satisfaction=rng.randint(1, 3) if low else rng.randint(3, 5),
                        nps=rng.randint(0, 6) if low else rng.randint(6, 10),
                    ),
                )
            )
        return out

    def events(self, until: datetime | None = None) -> Iterator[dict]:
        """Every event of the population up to ``until`` (default: the end), in time order.

        ``until`` may lie past the end: customers go on with their habits.
        """
        until = until or self.end
        pending: list[tuple[datetime, int, dict]] = []
        day = self.start
        while day < until:
            todays: list[tuple[datetime, dict]] = []
            for customer in self.customers:
                todays.extend(self._day_events(customer, day, pending))
            horizon = day + DAY
            while pending and pending[0][0] < horizon:
                when, _, event = heapq.heappop(pending)
                if when < until:
                    todays.append((when, event))
            todays.sort(key=lambda pair: pair[0])
            for when, event in todays:
                if when < until:
                    event["ts"] = when.isoformat(timespec="milliseconds")
                    yield event
            day = horizon


def _valid_record(event: dict, *, keyed: bool = True) -> SimRecord:
    key = event["customer_id"].encode() if keyed else None
    at = datetime.fromisoformat(event["ts"])
    return SimRecord(TOPIC_OF_TYPE[event["type"]], key, orjson.dumps(event), "valid", at)


def _bad_record(
    kind: str, sample: dict, seen: list[dict], rng: random.Random, end: datetime
) -> SimRecord:
    """A record of ``kind`` that the worker must dead-letter, modelled on ``sample``."""
    if kind == "duplicate_event_id":
        # Same id and customer as an earlier valid event (so it arrives after it,
        # in the same partition), different content.
        original = rng.choice(seen)
        clash = dict(original, note="same event_id, different content")
        return SimRecord(
            TOPIC_OF_TYPE[original["type"]],
            original["customer_id"].encode(),
            orjson.dumps(clash),
            kind,
        )
    if kind == "too_late":
        # A new event of a customer already seen, stamped long before that sighting.
        original = rng.choice(seen)
        late = dict(
            original,
            event_id=f"late-{original['event_id']}",
            ts=(datetime.fromisoformat(original["ts"]) - TOO_LATE_BY).isoformat(),
        )
        return SimRecord(
            TOPIC_OF_TYPE[original["type"]],
            original["customer_id"].encode(),
            orjson.dumps(late),
            kind,
        )
    topic = TOPIC_OF_TYPE[sample["type"]]
    key = sample["customer_id"].encode()
    bad = dict(sample, event_id=f"bad-{sample['event_id']}-{kind}")
    if kind == "not_json":
        return SimRecord(topic, key, b'{"event_id": "broken', kind)
    if kind == "not_object":
        return SimRecord(topic, key, orjson.dumps([bad]), kind)
    if kind == "missing_customer_id":
        bad.pop("customer_id")
    elif kind == "wrong_type":
        bad["customer_id"] = 12345
    elif kind == "negative_amount":
        topic = "purchases"
        bad.update(
            type="purchase",
            amount=-abs(rng.uniform(1, 100)),
            currency="EUR",
            order_id="o-neg",
            channel="online",
        )
    elif kind == "unknown_type":
        bad["type"] = "teleport"
    elif kind == "far_future":
        bad["ts"] = (end + timedelta(days=400)).isoformat()
    return SimRecord(topic, key, orjson.dumps(bad), kind)


def records(
    sim: Simulation,
    *,
    bad_share: float = 0.0,
    unkeyed_share: float = 0.0,
    limit: int | None = None,
    until: datetime | None = None,
) -> Iterator[SimRecord]:
    """The population's events as records, with bad ones mixed in.

    ``bad_share`` of the records are bad (cycling through every kind);
    ``unkeyed_share`` of the valid ones carry no key, so the worker must
    re-key them. Stops after ``limit`` records in all, or at ``until``.
    """
    rng = random.Random(sim.seed + 1)
    seen: list[dict] = []
    emitted = 0
    bad_index = 0
    for event in sim.events(until):
        if limit is not None and emitted >= limit:
            return
        if bad_share > 0 and seen and rng.random() < bad_share:
            kind = BAD_KINDS[bad_index % len(BAD_KINDS)]
            bad_index += 1
            yield _bad_record(kind, event, seen, rng, sim.end)
            emitted += 1
            if limit is not None and emitted >= limit:
                return
        unkeyed = unkeyed_share > 0 and rng.random() < unkeyed_share
        yield _valid_record(event, keyed=not unkeyed)
        if len(seen) < 10_000:
            seen.append(event)
        emitted += 1


def customers_for(events: int, days: int) -> int:
    """Population size whose history over ``days`` days holds at least ``events`` events.

    Churners fall silent part-way, so the population is sized half as large
    again as the habits alone suggest; ``records(limit=…)`` cuts the rest.
    """
    return max(20, math.ceil(1.5 * events / (days * MEAN_EVENTS_PER_CUSTOMER_DAY)))


def truth_rows(sim: Simulation) -> list[dict[str, Any]]:
    """Ground truth as plain dicts (for JSONL or CSV)."""
    return [asdict(t) for t in sim.truth()]
