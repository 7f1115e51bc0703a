"""Input event records and their validation.

Every input event has ``event_id``, ``customer_id``, ``ts`` and ``type`` plus the
fields of its type (DESIGN.md, "Topics and records"). Unknown extra fields are
kept. :func:`decode` turns the raw bytes of a Kafka record (or a line of a file)
into a validated event, or raises :class:`InvalidEvent` with a reason a person
can act on; that reason is what lands on the ``dead-letters`` topic.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
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

# Limits on what a producer may send (docs/robustness.md): beyond them a record
# is a dead letter, never a failing step further down the line.
#: largest record value, in bytes
MAX_RECORD_BYTES = 64 * 1024
#: deepest nesting of JSON arrays and objects
MAX_JSON_DEPTH = 16
#: longest id or label, in characters after NFC normalisation
MAX_ID_CHARS = 200
#: largest ``amount`` (the fold counts money in integer thousandths)
MAX_AMOUNT = 1e9
#: largest ``points`` of a points event
MAX_POINTS = 1e9
#: unknown extra fields kept per event: how many, and their JSON size in bytes
MAX_EXTRA_FIELDS = 32
MAX_EXTRA_BYTES = 8 * 1024
#: earliest accepted event time
MIN_TS = datetime(1970, 1, 1, tzinfo=UTC)

# Epoch values below this are almost certainly seconds, not milliseconds
# (1e11 ms is March 1973); reject them rather than silently misdate by 1000x.
_MIN_EPOCH_MS = 100_000_000_000


#: an input record: an event, or a report such as a win-back outcome
R = TypeVar("R", bound=BaseModel)


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
            return _not_before_1970(datetime.fromtimestamp(value / 1000.0, tz=UTC), value)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{value!r} is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset (write e.g. 'Z' or '+02:00')")
        try:
            # an offset can carry a time just inside year 1 or 9999 outside of it
            return _not_before_1970(parsed.astimezone(UTC), value)
        except OverflowError:
            raise ValueError(f"{value!r} is out of range") from None
    raise ValueError(f"must be ISO-8601 text or epoch milliseconds, not {type(value).__name__}")


def _not_before_1970(moment: datetime, value: Any) -> datetime:
    if moment < MIN_TS:
        raise ValueError(f"{value!r} is before 1970-01-01")
    return moment


def _clean_id(value: str) -> str:
    """NFC form of an id or label; no control characters, at most ``MAX_ID_CHARS``."""
    value = unicodedata.normalize("NFC", value)
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"longer than {MAX_ID_CHARS} characters ({len(value)})")
    for char in value:
        if unicodedata.category(char) == "Cc":
            raise ValueError(f"contains the control character {char!r}")
    return value


EventTime = Annotated[datetime, BeforeValidator(_parse_ts)]
# the raw bound keeps the work of normalising a huge string away
Text = Annotated[str, Field(min_length=1, max_length=4 * MAX_ID_CHARS), AfterValidator(_clean_id)]


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
    amount: Annotated[float, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False)]
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

    @model_validator(mode="after")
    def _bounded_points(self) -> EngagementEvent:
        points = (self.model_extra or {}).get("points")
        if (
            isinstance(points, int | float)
            and not isinstance(points, bool)
            and not abs(points) <= MAX_POINTS
        ):
            raise ValueError(f"points: at most {MAX_POINTS:g} (got {points!r})")
        return self


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
        event = model.model_validate(obj)
    except ValidationError as exc:
        raise InvalidEvent(describe(exc)) from None
    _check_extra(event)
    return event


def load_json(raw: bytes | None) -> Any:
    """The JSON value of a record; :class:`InvalidEvent` for none or malformed JSON.

    Also rejects a record over ``MAX_RECORD_BYTES``, nesting deeper than
    ``MAX_JSON_DEPTH`` and a NUL character in any string (PostgreSQL stores
    no NUL in text or ``jsonb``).
    """
    if raw is None:
        raise InvalidEvent("empty record (no value)")
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent(f"record too large: {len(raw)} bytes (limit {MAX_RECORD_BYTES})")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None
    _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    """Reject deep nesting and NUL characters anywhere in a JSON value."""
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        node, where, depth = pending.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise InvalidEvent(f"{where or 'value'}: contains a NUL character")
            continue
        if not isinstance(node, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise InvalidEvent(f"{where or 'value'}: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            for key, item in node.items():
                path = f"{where}.{key}" if where else str(key)
                if "\x00" in key:
                    raise InvalidEvent(f"{path!r}: field name contains a NUL character")
                pending.append((item, path, depth + 1))
        else:
            pending.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(node))


def _check_extra(event: Event) -> None:
    """Bound the unknown extra fields an event brings along: they are stored as sent."""
    extra = event.model_extra or {}
    if len(extra) > MAX_EXTRA_FIELDS:
        raise InvalidEvent(f"too many unknown fields: {len(extra)} (limit {MAX_EXTRA_FIELDS})")
    size = len(orjson.dumps(extra)) if extra else 0
    if size > MAX_EXTRA_BYTES:
        raise InvalidEvent(
            f"unknown fields too large: {size} bytes of JSON (limit {MAX_EXTRA_BYTES})"
        )


def decode(topic: str, raw: bytes | None, *, now: datetime, max_future_s: float) -> Event:
    """Decode and validate one raw record, rejecting far-future times."""
    return not_ahead(parse_object(topic, load_json(raw)), now, max_future_s)


def not_ahead(event: R, now: datetime, max_future_s: float) -> R:
    """``event`` (an input record), unless one of its times (``ts``, ``signup_ts``, …)
    is over ``max_future_s`` after ``now``: then :class:`InvalidEvent` names the field."""
    for name, value in event:
        if not isinstance(value, datetime):
            continue
        ahead = (value - now).total_seconds()
        if ahead > max_future_s:
            raise InvalidEvent(
                f"{name}: {value.isoformat()} is {ahead / 3600:.1f} h in the future "
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
