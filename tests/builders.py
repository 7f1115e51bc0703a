"""Hand-built events for fold tests: ``ev(day, type, **fields)`` at T0 + day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from churnwatch.events import TOPIC_OF_TYPE, Event, parse_object

T0 = datetime(2026, 1, 1, tzinfo=UTC)
_PURCHASE_FIELDS = {"currency": "EUR", "order_id": "o", "channel": "online"}


def at(day: float) -> float:
    """POSIX seconds of T0 + ``day`` days."""
    return (T0 + timedelta(days=day)).timestamp()


def ev(day: float, type_: str, cid: str = "c1", eid: str | None = None, **fields: Any) -> Event:
    """A validated event of ``type_`` at T0 + ``day`` days."""
    if type_ in ("purchase", "refund"):
        fields = {**_PURCHASE_FIELDS, **fields}
    obj = {
        "event_id": eid or f"{cid}-{type_}-{day}-{sorted(fields.items())}",
        "customer_id": cid,
        "ts": (T0 + timedelta(days=day)).isoformat(),
        "type": type_,
        **fields,
    }
    return parse_object(TOPIC_OF_TYPE[type_], obj)


def store_rows(events, stored_at: datetime | None = None) -> list[dict[str, Any]]:
    """``events`` as rows for :func:`churnwatch.store.append_events`."""
    from churnwatch.events import payload_of

    return [
        {
            "event_id": e.event_id,
            "customer_id": e.customer_id,
            "topic": TOPIC_OF_TYPE[e.type],
            "type": e.type,
            "ts": e.ts,
            "payload": payload_of(e),
            "source": None,
            "stored_at": stored_at or T0,
        }
        for e in events
    ]


def monthly_buyers(customers: int, days: float, *, seed: int = 0) -> list[Event]:
    """A subscription-like history from T0: each customer pays every 29-31 days.

    Each starts within the first month; two in five cancel at a random day.
    Events come in event-time order.
    """
    import random

    rng = random.Random(seed)
    events = []
    for i in range(customers):
        day = rng.uniform(0, 30)
        stop = rng.uniform(20, 2 * days) if rng.random() < 0.4 else days
        while day < min(stop, days):
            events.append(ev(day, "purchase", f"m{i}", eid=f"m{i}-{day:.4f}", amount=20.0))
            day += rng.uniform(29, 31)
    return sorted(events, key=lambda e: e.epoch_s)
