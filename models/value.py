"""What a customer is worth, and what their churn puts at risk.

With a trained model the worth is the store's value model fitted beside it:
the purchase model (:mod:`churnwatch.models.clv`) or, for a subscription
history, retention by tenure (:mod:`churnwatch.models.contractual`). The rule
scorer has none; then the worth is the customer's run rate: the last year's
net spend scaled to the horizon, and the purchase model's fields stay empty.
``value_at_risk`` is the churn score times that worth, and it is what the live
page and the API rank alerts by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from churnwatch.models.contractual import ValueModel

#: the horizon of the run-rate value when no CLV model is at hand
RUN_RATE_HORIZON_DAYS = 90.0
#: the fields every alert carries, in this order
VALUE_FIELDS = ("p_alive", "expected_purchases", "clv", "clv_horizon_days", "value_at_risk")


def _rounded(value: Any, places: int) -> float | None:
    return None if value is None or value != value else round(float(value), places)


def customer_values(
    rows: Sequence[Mapping[str, Any]], scores: Sequence[float], clv: ValueModel | None
) -> list[dict[str, float | None]]:
    """The :data:`VALUE_FIELDS` of each feature row scored ``scores``."""
    if not rows:
        return []
    out = []
    if clv is not None:
        frame = pd.DataFrame.from_records(list(rows))
        p_alive, expected, worth, _ = clv.names
        values = clv.columns(frame)
        for _, row in values.iterrows():
            out.append(
                {
                    "p_alive": _rounded(row[p_alive], 4),
                    "expected_purchases": _rounded(row[expected], 4),
                    "clv": _rounded(row[worth], 2),
                    "clv_horizon_days": clv.horizon_days,
                }
            )
    else:
        for features in rows:
            spend = max(0.0, float(features.get("monetary_365d") or 0.0))
            out.append(
                {
                    "p_alive": None,
                    "expected_purchases": None,
                    "clv": round(spend * RUN_RATE_HORIZON_DAYS / 365, 2),
                    "clv_horizon_days": RUN_RATE_HORIZON_DAYS,
                }
            )
    for fields, score in zip(out, scores, strict=True):
        money = fields["clv"]
        fields["value_at_risk"] = None if money is None else round(score * money, 2)
    return out
