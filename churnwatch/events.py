"""Input event records and their validation.

Every input event has ``event_id``, ``customer_id``, ``ts`` and ``type`` plus the
fields of its type (DESIGN.md, "Topics and records"). Unknown extra fields are
kept. :func:`decode` turns the raw bytes of a Kafka record (or a line of a file)
into a validated event, or raises :class:`InvalidEvent` with a reason a person
can act on; that reason is what lands on the ``dead-letters`` topic.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

PURCHASES = "purchases"
COMPLAINTS = "complaints"
ENGAGEMENT = "engagement"
CUSTOMERS = "customers"
INPUT_TOPICS: tuple[str, ...] = (PURCHASES, COMPLAINTS, ENGAGEMENT, CUSTOMERS)

COMPLAINT_CATEGORIES = ("service_quality", "product", "price", "delivery", "communication", "other")
ENGAGEMENT_TYPES = (
    "login",
    "email_open",
    "email_click",
    "campaign_participation",
    "member_event",
    "points_earned",
    "points_redeemed",
    "support_contact",
)

# Epoch values below this are almost certainly seconds, not milliseconds
# (1e11 ms is March 1973); reject them rather than silently misdate by 1000x.
_MIN_EPOCH_MS = 100_000_000_000


class InvalidEvent(ValueError):
    """An input record that cannot be accepted; ``str(exc)`` is the reason."""


def _parse_ts(value: Any) -> datetime:
    """Accept epoch milliseconds or ISO-8601 with an offset; return aware UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()!r} has no UTC offset")
        return value.astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError("must be ISO-8601 with offset or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of epoch milliseconds")
        if abs(value) < _MIN_EPOCH_MS:
            raise ValueError(f"{value!r} looks like epoch seconds; send epoch milliseconds")
        try:
            return datetime.fromtimestamp(value / 1000.0, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{value!r} is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset (write e.g. 'Z' or '+02:00')")
        return parsed.astimezone(UTC)
    raise ValueError(f"must be ISO-8601 text or epoch milliseconds, not {type(value).__name__}")


EventTime = Annotated[datetime, BeforeValidator(_parse_ts)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class Event(BaseModel):
    """Fields common to every input event."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    event_id: Text
    customer_id: Text
    ts: EventTime
    type: str

    @property
    def epoch_s(self) -> float:
        """Event time as POSIX seconds (fast arithmetic for the fold)."""
        return self.ts.timestamp()


class PurchaseEvent(Event):
    """A purchase or a refund on the ``purchases`` topic."""

    type: Literal["purchase", "refund"]
    amount: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    order_id: Text
    channel: Text
    category: Text | None = None


class ComplaintOpened(Event):
    """A complaint raised by the customer."""

    type: Literal["complaint_opened"]
    complaint_id: Text
    category: Literal[COMPLAINT_CATEGORIES]  # type: ignore[valid-type]
    severity: Annotated[int, Field(ge=1, le=3)]


class ComplaintResolved(Event):
    """A complaint closed by the company, with an optional rating."""

    type: Literal["complaint_resolved"]
    complaint_id: Text
    satisfaction: Annotated[int, Field(ge=1, le=5)] | None = None


class EngagementEvent(Event):
    """Logins, email, campaigns, member events, points and support contacts."""

    type: Literal[ENGAGEMENT_TYPES]  # type: ignore[valid-type]


class SurveyResponse(Event):
    """A survey answer: satisfaction 1-5 or NPS 0-10 (at least one)."""

    type: Literal["survey_response"]
    satisfaction: Annotated[int, Field(ge=1, le=5)] | None = None
    nps: Annotated[int, Field(ge=0, le=10)] | None = None

    @model_validator(mode="after")
    def _has_an_answer(self) -> SurveyResponse:
        if self.satisfaction is None and self.nps is None:
            raise ValueError("survey_response needs 'satisfaction' (1-5) or 'nps' (0-10)")
        return self


class CustomerProfile(Event):
    """A profile upsert on the ``customers`` topic; the newest one (by ``ts``) wins."""

    type: Literal["profile"]
    signup_ts: EventTime | None = None
    region: Text | None = None
    industry: Text | None = None
    segment: Text | None = None


_MODELS_BY_TOPIC: dict[str, dict[str, type[Event]]] = {
    PURCHASES: {"purchase": PurchaseEvent, "refund": PurchaseEvent},
    COMPLAINTS: {"complaint_opened": ComplaintOpened, "complaint_resolved": ComplaintResolved},
    ENGAGEMENT: {
        **dict.fromkeys(ENGAGEMENT_TYPES, EngagementEvent),
        "survey_response": SurveyResponse,
    },
    CUSTOMERS: {"profile": CustomerProfile},
}

#: Which topic each event ``type`` belongs to.
TOPIC_OF_TYPE: dict[str, str] = {
    event_type: topic for topic, models in _MODELS_BY_TOPIC.items() for event_type in models
}


def describe(exc: ValidationError) -> str:
    """A pydantic error as one readable line: each field, what is wrong, what came."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        where = f"{loc}: " if loc else ""
        msg = err["msg"].removeprefix("Value error, ")
        # custom validators already quote the input; pydantic's own messages do not
        got = "" if err["type"] in ("missing", "value_error") else f" (got {err['input']!r})"
        parts.append(f"{where}{msg}{got}")
    return "; ".join(parts)


def parse_object(topic: str, obj: Any) -> Event:
    """Validate an already-decoded JSON value as an event of ``topic``."""
    if not isinstance(obj, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(obj), "a number"
        )
        raise InvalidEvent(f"value must be a JSON object, got {kind}")
    models = _MODELS_BY_TOPIC.get(topic)
    if models is None:
        raise InvalidEvent(f"topic {topic!r} carries no input events")
    event_type = obj.get("type")
    if event_type is None:
        raise InvalidEvent("missing field 'type'")
    model = models.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        expected = ", ".join(models)
        raise InvalidEvent(f"unknown type {event_type!r} on topic {topic} (expected: {expected})")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise InvalidEvent(describe(exc)) from None


def load_json(raw: bytes | None) -> Any:
    """The JSON value of a record; :class:`InvalidEvent` for none or malformed JSON."""
    if raw is None:
        raise InvalidEvent("empty record (no value)")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None


def decode(topic: str, raw: bytes | None, *, now: datetime, max_future_s: float) -> Event:
    """Decode and validate one raw record, rejecting far-future event times."""
    event = parse_object(topic, load_json(raw))
    ahead = (event.ts - now).total_seconds()
    if ahead > max_future_s:
        raise InvalidEvent(
            f"ts {event.ts.isoformat()} is {ahead / 3600:.1f} h in the future "
            f"(limit {max_future_s / 3600:.1f} h)"
        )
    return event


def from_payload(payload: dict[str, Any]) -> Event:
    """The event back from its stored payload (:func:`payload_of`)."""
    return parse_object(TOPIC_OF_TYPE[payload["type"]], payload)


def payload_of(event: Event) -> dict[str, Any]:
    """The event as stored: every field as received, ``ts`` normalised to UTC ISO."""
    data = event.model_dump(mode="json", exclude_none=True)
    data["ts"] = event.ts.isoformat()
    return data
