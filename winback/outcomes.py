"""``winback-outcomes`` from the CRM: validation, and what each status means.

The CRM reports what happened to a task; churnwatch keeps every report and
moves the task and its alert along. Whether the customer came back is not the
CRM's word: a purchase decides (``alerts/policy.py``).

    contacted, accepted, done  → in_progress (someone is working on it)
    declined, failed           → lost (ends the task and its alert)
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from churnwatch.events import EventTime, InvalidEvent, describe, load_json

# defined beside the task record, so that the store applies it without importing win-back
from churnwatch.records import STATUS_OF_OUTCOME as STATUS_OF_OUTCOME


class Outcome(BaseModel):
    """One CRM report on a win-back task: a ``winback-outcomes`` record (docs/contract.md)."""

    # field docstrings become the descriptions of its JSON Schema (churnwatch/contract.py)
    model_config = ConfigDict(extra="allow", frozen=True, use_attribute_docstrings=True)

    task_id: str = Field(min_length=1)
    """The ``task_id`` of a ``winback-tasks`` record (an unknown one is a dead letter)."""
    status: Literal["contacted", "accepted", "declined", "failed", "done"]
    """What happened: ``contacted``, ``accepted`` and ``done`` keep the task in progress;
    ``declined`` and ``failed`` end it and its alert as lost."""
    ts: EventTime
    """When it happened."""
    note: str | None = None
    """Free text from the CRM, kept as sent."""

    @property
    def outcome_id(self) -> str:
        """The same report, redelivered or resent, has the same id."""
        key = f"{self.task_id}\x1f{self.status}\x1f{self.ts.isoformat()}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]


def decode_outcome(raw: bytes | None) -> Outcome:
    """Validate one ``winback-outcomes`` record; :class:`InvalidEvent` says why not."""
    obj = load_json(raw)
    if not isinstance(obj, dict):
        raise InvalidEvent("value must be a JSON object")
    try:
        return Outcome.model_validate(obj)
    except ValidationError as exc:
        raise InvalidEvent(describe(exc)) from None
