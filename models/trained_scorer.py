"""A trained model as a scorer, with contributions against a reference customer.

The contribution of an indicator is how much lower the score would be if this
customer's value were the reference customer's: the median of the customers
who stayed, in the model's training snapshots (kept on the model card). The
one-hot columns of the newest complaint's category count as one indicator.
All rows and all their substitutions go through a single ``predict_proba``.
Where the calibrated score sits on a flat step of the isotonic calibration, no
single substitution moves it; those rows are ranked on the trees' uncalibrated
probability instead, and their codes say ``"scale": "uncalibrated"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from churnwatch.models.contractual import value_model_from_dict
from churnwatch.models.registry import ModelCard, load
from churnwatch.models.scoring import TOP_CODES, ReasonCode, Row
from churnwatch.models.training import CATEGORICAL, feature_frame, raw_frame, rfm_frame


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
        #: the store's value model (purchase and spend, or retention), fitted with this one
        self.clv = None if card.clv is None else value_model_from_dict(card.clv)
        reference = card.reference or {}
        self._reference = np.array(
            [np.nan if reference.get(c) is None else reference[c] for c in self.columns]
        )
        #: the customer-value outputs follow from the row: swapping an indicator they
        #: read (recency, order value) recomputes them; they are no indicator of their own
        derived = set(self.clv.names) if self.clv is not None else set()
        self._derived = [i for i, c in enumerate(self.columns) if c in derived]
        groups: dict[str, list[int]] = {}
        for index, column in enumerate(self.columns):
            if column not in derived:
                groups.setdefault(_indicator(column), []).append(index)
        self._groups = list(groups.items())

    def _frame(self, rows: Sequence[Row]) -> pd.DataFrame:
        return feature_frame(rows, self.clv)[self.columns]

    def _predict(self, frame: pd.DataFrame) -> np.ndarray:
        # One thread: OpenMP workers spin while they wait, so beside the worker's
        # other threads on busy cores a call slows many times over (measured, see
        # docs/benchmarks.md); alone, one thread is as fast for batches this size.
        with threadpool_limits(1):
            probabilities: np.ndarray = self.model.predict_proba(frame)[:, 1]
        return probabilities

    def _uncalibrated(self, frame: pd.DataFrame) -> np.ndarray:
        """The boosted trees' mean probability before calibration (a smooth score)."""
        fitted = getattr(self.model, "calibrated_classifiers_", None)
        if not fitted:
            return self._predict(frame)
        with threadpool_limits(1):
            each = [c.estimator.predict_proba(frame)[:, 1] for c in fitted]
            mean: np.ndarray = np.mean(each, axis=0)
        return mean

    def values(self, rows: Sequence[Row]) -> list[float]:
        """Calibrated churn probabilities, one ``predict_proba`` for the batch."""
        if not rows:
            return []
        return [round(float(p), 4) for p in self._predict(self._frame(rows))]

    def reason_codes(self, rows: Sequence[Row], values: Sequence[float]) -> list[list[ReasonCode]]:
        """The indicators whose reference value would lower the score most."""
        if not rows:
            return []
        frame = self._frame(rows)
        width = len(self._groups)
        stacked = np.repeat(frame.to_numpy(dtype=float), width, axis=0)
        for offset, (_, columns) in enumerate(self._groups):
            stacked[offset::width, columns] = self._reference[columns]
        swapped_frame = pd.DataFrame(stacked, columns=self.columns)
        if self._derived and self.clv is not None:
            # the CLV inputs as swapped (or as they were, for those not modelled)
            inputs = raw_frame(rows).loc[np.repeat(np.arange(len(rows)), width)]
            inputs = inputs.reset_index(drop=True)
            for name in ("recency_days", "avg_order_value_365d"):
                if name in swapped_frame:
                    inputs[name] = swapped_frame[name].to_numpy()
            derived = [self.columns[i] for i in self._derived]
            swapped_frame[derived] = self.clv.columns(inputs)[derived].to_numpy()
        swapped = self._predict(swapped_frame)
        raw: tuple[np.ndarray, np.ndarray] | None = None
        out = []
        for i, row in enumerate(rows):
            # against the score the row was given: no second prediction
            gains = values[i] - swapped[i * width : (i + 1) * width]
            scale = "calibrated"
            if not any(round(float(g), 4) > 0 for g in gains):
                # the calibration is a step function: on a flat step (a saturated
                # score, say) no one swap moves it, so rank by the trees' own score
                if raw is None:
                    raw = (self._uncalibrated(frame), self._uncalibrated(swapped_frame))
                gains = raw[0][i] - raw[1][i * width : (i + 1) * width]
                scale = "uncalibrated"
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
                        "value": _shown(row.get(name)),
                        "reference": reference,
                        "contribution": round(float(gains[g]), 4),
                        "scale": scale,
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

    def reason_codes(self, rows: Sequence[Row], values: Sequence[float]) -> list[list[ReasonCode]]:
        """None: the baseline only ranks."""
        return [[] for _ in rows]


def load_scorer(folder: Path, *, sha256: str | None = None) -> ModelScorer:
    """The scorer of the model saved in ``folder`` (its file checked against ``sha256``)."""
    model, card = load(folder, sha256=sha256)
    return ModelScorer(model, card)
