"""Scores with their reasons: the interface every scorer (rule or model) offers.

Scoring is in two steps so that a batch costs one ``predict`` call: first the
values of every row at once (:meth:`Scorer.values`), then, for the few rows
that raise an alert, the contributing indicators (:meth:`Scorer.reason_codes`).
The primary reason comes from the evidence scorecard of
:mod:`churnwatch.models.reasons`, whichever scorer gave the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from churnwatch.models.reasons import primary_reason
from churnwatch.models.value import customer_values

Row = Mapping[str, Any]
#: how many contributing indicators an alert lists
TOP_CODES = 5


#: one indicator that drove a score, with its value (``{"indicator": ..., "value": ...}``)
ReasonCode = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Score:
    """A churn score in [0, 1] with what drove it."""

    value: float
    reason: str
    reason_codes: list[dict[str, Any]]
    model_version: str
    #: CLV and value at risk (:data:`~churnwatch.models.value.VALUE_FIELDS`)
    value_fields: dict[str, float | None] = field(default_factory=dict)


class Scorer(Protocol):
    """Turns feature rows (:func:`churnwatch.features.row.feature_row`) into scores."""

    #: recorded in every alert as ``model_version``
    version: str

    def values(self, rows: Sequence[Row]) -> list[float]:
        """Churn scores in [0, 1], one per row, rounded to 4 places."""
        ...

    def reason_codes(self, rows: Sequence[Row], values: Sequence[float]) -> list[list[ReasonCode]]:
        """Per row, the indicators that raised its score most, strongest first."""
        ...


def explain(scorer: Scorer, rows: Sequence[Row], values: Sequence[float]) -> list[Score]:
    """Full scores (reason and reason codes) for rows already valued by ``scorer``."""
    codes = scorer.reason_codes(rows, values) if rows else []
    worth = customer_values(rows, values, getattr(scorer, "clv", None))
    return [
        Score(value, primary_reason(row), row_codes, scorer.version, fields)
        for row, value, row_codes, fields in zip(rows, values, codes, worth, strict=True)
    ]


def score_rows(scorer: Scorer, rows: Sequence[Row]) -> list[Score]:
    """Value and explain every row."""
    return explain(scorer, rows, scorer.values(rows))
