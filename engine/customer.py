"""One customer's record and how an event, or time passing, moves it on.

Plain Python shared by the worker and replay: the fold (features), the
lifecycle stage and its changes, the tier; :mod:`churnwatch.engine.timeline` moves
records through event time and applies the alert policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from churnwatch.alerts.policy import AlertState, Ending, iso
from churnwatch.events import Event
from churnwatch.features.lifecycle import changes_between, next_change, stage_at
from churnwatch.features.row import feature_row
from churnwatch.features.segments import segment_source, segments_of
from churnwatch.features.state import CustomerState, apply
from churnwatch.features.tier import RFM, Population
from churnwatch.records import AlertEnding, ChurnAlert, CustomerChange, WinbackTask

_CHANGE_NAMESPACE = uuid.UUID("0b5f7c2e-1d4a-4f86-b3c9-6e2a8d1f0c47")


def change_record(
    customer_id: str,
    at: float,
    name: str,
    old: str | None,
    new: str,
    cause: str,
    segments: dict[str, str | None],
) -> CustomerChange:
    """A ``customer-changes`` record; its id is derived from what changed and when."""
    key = f"{customer_id}\x1f{name}\x1f{new}\x1f{at!r}"
    return CustomerChange(
        change_id=str(uuid.uuid5(_CHANGE_NAMESPACE, key)),
        customer_id=customer_id,
        ts=iso(at),
        field=name,
        from_value=old,
        to_value=new,
        cause=cause,
        segments=segments,
    )


@dataclass(slots=True)
class CustomerRecord:
    """Features plus what was last concluded from them (stage, tier, alerts)."""

    features: CustomerState
    alerts: AlertState = field(default_factory=AlertState)
    stage: str = "prospect"
    #: the time the stage was last evaluated at
    stage_as_of: float | None = None
    value_tier: str = "general"
    #: tier inputs as of the last assessment
    rfm: RFM = field(default_factory=lambda: RFM(None, 0, 0.0))
    #: the churn score of the latest assessment, and the event time it was taken at
    score: float | None = None
    scored_at: float | None = None

    @property
    def customer_id(self) -> str:
        return self.features.customer_id

    @property
    def last_event_s(self) -> float | None:
        """The customer's newest event time (its clock)."""
        return self.features.last_event_s

    @classmethod
    def from_row(cls, customer_id: str, row: Mapping[str, Any] | None) -> CustomerRecord:
        """Rebuild from the stored form; ``None`` gives a new customer."""
        if row is None:
            return cls(CustomerState(customer_id))
        return cls(
            features=CustomerState.from_dict(row["features"]),
            alerts=AlertState.from_list(row.get("alert")),
            stage=row.get("lifecycle_stage", "prospect"),
            stage_as_of=row.get("stage_as_of"),
            value_tier=row.get("value_tier", "general"),
            rfm=RFM(*row["rfm"]) if row.get("rfm") else RFM(None, 0, 0.0),
            score=row.get("score"),
            scored_at=row.get("scored_at"),
        )

    def segments(self) -> dict[str, str | None]:
        """The customer's segments now (:mod:`churnwatch.features.segments`)."""
        return segments_of(segment_source(self.features))

    def row(self) -> dict[str, Any]:
        """The stored, JSON-ready form."""
        rfm = self.rfm
        return {
            "features": self.features.to_dict(),
            "alert": self.alerts.to_list(),
            "lifecycle_stage": self.stage,
            "stage_as_of": self.stage_as_of,
            "value_tier": self.value_tier,
            "rfm": [rfm.last_purchase_s, rfm.frequency_365d, rfm.monetary_365d],
            "score": self.score,
            "scored_at": self.scored_at,
        }

    def next_due(self) -> float | None:
        """When time alone may next change the stage."""
        if self.stage_as_of is None:
            return None
        return next_change(self.features, self.stage_as_of)

    def advance_to(self, until: float, cause: str, changes: list[CustomerChange]) -> float | None:
        """Let time run to ``until`` with no new event, recording stage changes.

        Returns the time of the last change, or ``None`` when the stage held.
        """
        if self.stage_as_of is None or until <= self.stage_as_of:
            return None
        last = None
        for at, old, new in changes_between(self.features, self.stage, self.stage_as_of, until):
            changes.append(
                change_record(
                    self.customer_id, at, "lifecycle_stage", old, new, cause, self.segments()
                )
            )
            self.stage, last = new, at
        self.stage_as_of = until
        return last

    def fold(self, event: Event, changes: list[CustomerChange]) -> None:
        """Fold one accepted event: time first runs up to it, then the event counts."""
        at = event.epoch_s
        clock = max(at, self.features.last_event_s or at)
        self.advance_to(clock, "silence", changes)
        apply(self.features, event)
        self._restage(clock, event.event_id, changes)

    def _restage(self, at: float, cause: str, changes: list[CustomerChange]) -> None:
        new = stage_at(self.features, at)
        if new != self.stage:
            changes.append(
                change_record(
                    self.customer_id, at, "lifecycle_stage", self.stage, new, cause, self.segments()
                )
            )
            self.stage = new
        self.stage_as_of = at

    def measure(self, as_of: float) -> dict[str, Any]:
        """The feature row as of ``as_of``; remembers the tier inputs it holds."""
        row = feature_row(self.features, as_of)
        self.rfm = RFM(self.features.last_purchase_s, row["frequency_365d"], row["monetary_365d"])
        return row

    def retier(
        self, population: Population, trigger: str, at: float, changes: list[CustomerChange]
    ) -> None:
        """Take the tier ``population`` gives now, recording a move."""
        tier = population.tier(self.customer_id)
        if tier != self.value_tier:
            changes.append(
                change_record(
                    self.customer_id,
                    at,
                    "value_tier",
                    self.value_tier,
                    tier,
                    trigger,
                    self.segments(),
                )
            )
            self.value_tier = tier


@dataclass
class Assessment:
    """What assessing a batch of customers raised and ended."""

    alerts: list[ChurnAlert] = field(default_factory=list)
    tasks: list[WinbackTask] = field(default_factory=list)
    #: ``{"alert_id", "status", "ts"}`` of alerts that came to an end
    endings: list[AlertEnding] = field(default_factory=list)

    def end(self, ending: Ending | None) -> None:
        """Record ``ending``, if any."""
        if ending is not None:
            self.endings.append(
                AlertEnding(alert_id=ending.alert_id, status=ending.status, ts=iso(ending.at))
            )
