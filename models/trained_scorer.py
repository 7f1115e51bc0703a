"""A trained model as a scorer, with contributions against a reference customer.

The contribution of an indicator is how much lower the score would be if this
customer's value were the reference customer's: the median of the customers
who stayed, in the model's training snapshots (kept on the model card). The
one-hot columns of the newest complaint's category count as one indicator.
All rows and all their substitutions go through a single ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from churnwatch.models.clv import CLVModel
from churnwatch.models.registry import ModelCard, load
from churnwatch.models.scoring import TOP_CODES, Row
from churnwatch.models.training import CATEGORICAL, feature_frame, rfm_frame
from threadpoolctl import threadpool_limits


def _indicator(column: str) -> str:
    return CATEGORICAL if column.startswith(f"{CATEGORICAL}_") else column


def _shown(value: Any) -> Any:
    """A JSON-ready value: floats (numpy's too) rounded, NaN as ``None``."""
    if isinstance(value, float | np.floating):
        return None if value != value else round(float(value), 4)
    return value


class ModelScorer:
    """Scores feature rows with a fitted model from the registry."""

    def __init__(self, model: Any, card: ModelCard) -> None:
        self.model = model
        self.version = card.version
        self.columns = list(card.features)
        #: the store's purchase and spend models, fitted with this one
        self.clv = None if card.clv is None else CLVModel.from_dict(card.clv)
        reference = card.reference or {}
        self._reference = np.array(
            [np.nan if reference.get(c) is None else reference[c] for c in self.columns]
        )
        groups: dict[str, list[int]] = {}
        for index, column in enumerate(self.columns):
            groups.setdefault(_indicator(column), []).append(index)
        self._groups = list(groups.items())

    def _frame(self, rows: Sequence[Row]) -> pd.DataFrame:
        return feature_frame(rows, self.clv)[self.columns]

    def _predict(self, frame: pd.DataFrame) -> np.ndarray:
        # One thread: OpenMP workers spin while they wait, and beside the
        # worker's other threads on two busy cores one call took 1 s instead of
        # 65 ms (measured); alone, one thread is as fast for batches this size.
        with threadpool_limits(1):
            return self.model.predict_proba(frame)[:, 1]

    def values(self, rows: Sequence[Row]) -> list[float]:
        """Calibrated churn probabilities, one ``predict_proba`` for the batch."""
        if not rows:
            return []
        return [round(float(p), 4) for p in self._predict(self._frame(rows))]

    def reason_codes(self, rows: Sequence[Row], values: Sequence[float]) -> list[list[dict]]:
        """The indicators whose reference value would lower the score most."""
        if not rows:
            return []
        frame = self._frame(rows)
        width = len(self._groups)
        stacked = np.repeat(frame.to_numpy(dtype=float), width, axis=0)
        for offset, (_, columns) in enumerate(self._groups):
            stacked[offset::width, columns] = self._reference[columns]
        swapped = self._predict(pd.DataFrame(stacked, columns=self.columns))
        out = []
        for i, row in enumerate(rows):
            # against the score the row was given: no second prediction
            gains = values[i] - swapped[i * width : (i + 1) * width]
            ranked = sorted(range(width), key=lambda g: gains[g], reverse=True)
            codes = []
            for g in ranked[:TOP_CODES]:
                if round(float(gains[g]), 4) <= 0:
                    break
                name, columns = self._groups[g]
                reference = None if name == CATEGORICAL else _shown(self._reference[columns[0]])
                codes.append(
                    {
                        "indicator": name,
                        # the customer-value columns are the model's, not the row's
                        "value": _shown(row[name] if name in row else frame.iat[i, columns[0]]),
                        "reference": reference,
                        "contribution": round(float(gains[g]), 4),
                    }
                )
            out.append(codes)
        return out


class RFMScorer:
    """The RFM baseline as a scorer: recency, frequency and spend alone, no reason codes."""

    version = "rfm-baseline"

    def __init__(self, baseline: Any) -> None:
        self.baseline = baseline

    def values(self, rows: Sequence[Row]) -> list[float]:
        """The baseline's churn probability of each row."""
        if not rows:
            return []
        p = self.baseline.predict_proba(rfm_frame(feature_frame(rows)))[:, 1]
        return [round(float(v), 4) for v in p]

    def reason_codes(self, rows: Sequence[Row], values: Sequence[float]) -> list[list[dict]]:
        """None: the baseline only ranks."""
        return [[] for _ in rows]


def load_scorer(folder: Path) -> ModelScorer:
    """The scorer of the model saved in ``folder``."""
    model, card = load(folder)
    return ModelScorer(model, card)
