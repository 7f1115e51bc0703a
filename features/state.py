"""The customer state and the fold that advances it by one event."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from churnwatch.events import ComplaintOpened, Event, PurchaseEvent

_PURCHASE = "purchase"


@dataclass(slots=True)
class CustomerState:
    """What churnwatch knows about one customer, all in event time (POSIX seconds)."""

    customer_id: str
    first_seen_s: float | None = None
    last_event_s: float | None = None
    last_purchase_s: float | None = None
    purchase_count: int = 0
    refund_count: int = 0
    #: purchases minus refunds, all time
    monetary_total: float = 0.0
    complaint_count: int = 0
    last_complaint_category: str | None = None
    event_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as kept in the store and the Faust table."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of :meth:`to_dict`; ignores keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def apply(state: CustomerState | None, event: Event) -> CustomerState:
    """Fold one validated event into the customer's state and return it.

    The state is updated in place (the hot path allocates nothing per event);
    ``None`` starts a new customer.
    """
    if state is None:
        state = CustomerState(customer_id=event.customer_id)
    at = event.epoch_s
    if state.first_seen_s is None or at < state.first_seen_s:
        state.first_seen_s = at
    if state.last_event_s is None or at > state.last_event_s:
        state.last_event_s = at
    state.event_count += 1

    if isinstance(event, PurchaseEvent):
        if event.type == _PURCHASE:
            state.purchase_count += 1
            state.monetary_total += event.amount
            if state.last_purchase_s is None or at > state.last_purchase_s:
                state.last_purchase_s = at
        else:
            state.refund_count += 1
            state.monetary_total -= event.amount
    elif isinstance(event, ComplaintOpened):
        state.complaint_count += 1
        state.last_complaint_category = event.category
    return state
