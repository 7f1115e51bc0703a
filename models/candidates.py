"""The candidate scorers ``train`` fits side by side, and which one may be served.

Two learned models (gradient boosting on the warning indicators, with and
without the purchase model's expectations as inputs) compete with baselines
that a spreadsheet could give: the purchase model's own chance of no purchase
within the horizon (BG/NBD), and logistic regressions on RFM, on recency
alone, on tenure alone and on recent activity counts. Every candidate is a
scikit-learn-style estimator over named columns of the model frame, so the
worker, replay and the notebook API serve any of them the same way, reason
codes included (:class:`~churnwatch.models.trained_scorer.ModelScorer`).

The champion is the candidate with the best held-out ROC AUC; on a tie the
simpler one (a baseline before a learned model). A candidate whose ROC AUC is
below the best other baseline's beyond the bootstrap interval of the paired
difference is not promoted without ``--force``: churnwatch never serves a
score that is worse than a baseline it knows about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from churnwatch.models.candidate_names import (
    CANDIDATES,
    LOGISTIC_BASELINES,
    PURCHASE_MODEL,
)


@dataclass
class Candidate:
    """A fitted candidate: an estimator with ``predict_proba`` over ``columns``."""

    name: str
    model: Any
    columns: tuple[str, ...]

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probabilities of the rows of a model frame."""
        probabilities: np.ndarray = self.model.predict_proba(frame[list(self.columns)])[:, 1]
        return probabilities


def fill_recency(frame: pd.DataFrame) -> pd.DataFrame:
    """A customer with no purchase is as far from buying as the year's window allows."""
    return frame.fillna({"recency_days": 365.0}) if "recency_days" in frame else frame


class ColumnScore:
    """A probability the frame already holds, served as a model (the purchase model's)."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.classes_ = np.array([0, 1])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """``[1 - p, p]`` per row; a row the column says nothing of counts as churned."""
        p = frame[self.column].to_numpy(dtype=float)
        p = np.where(np.isnan(p), 1.0, np.clip(p, 0.0, 1.0))
        return np.column_stack([1.0 - p, p])


def logistic() -> Pipeline:
    """A scaled logistic regression; missing values take the median (recency: a year)."""
    return make_pipeline(
        FunctionTransformer(fill_recency),
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )


def fit_baselines(frame: pd.DataFrame, y: np.ndarray, names: set[str]) -> dict[str, Candidate]:
    """The baselines of ``names`` that the rows of ``frame`` can fit.

    A baseline whose inputs are never observed here (tenure without profiles,
    the purchase model where it could not fit) is left out, not faked.
    """
    out = {}
    no_purchase = next((c for c in frame.columns if c.startswith("p_no_purchase_")), None)
    if PURCHASE_MODEL in names and no_purchase is not None and frame[no_purchase].notna().any():
        # the purchase model's output; recency is what moves it (for the reason codes)
        model = ColumnScore(no_purchase)
        out[PURCHASE_MODEL] = Candidate(PURCHASE_MODEL, model, ("recency_days", no_purchase))
    for name, columns in LOGISTIC_BASELINES.items():
        observed = tuple(c for c in columns if c in frame and frame[c].notna().any())
        if name in names and observed:
            model = logistic().fit(frame[list(observed)], y)
            out[name] = Candidate(name, model, observed)
    return out


def champion(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """The candidate with the best ROC AUC; on a tie, the simplest."""
    ranked = [name for name in CANDIDATES if name in metrics]
    return max(ranked, key=lambda name: metrics[name]["roc_auc"])


def refusal(name: str, evidence: Mapping[str, Any] | None) -> str | None:
    """Why the candidate ``name`` must not be promoted without ``--force``; ``None``: it may.

    ``evidence`` is the model card's: its ROC AUC against the best other baseline.
    """
    if not evidence or evidence.get("against") is None:
        return None
    low, high = evidence["interval"]
    if high >= 0:
        return None
    return (
        f"{name} ranks worse than the {evidence['against']} baseline on held-out data: "
        f"ROC AUC {evidence['difference']:+.4f} (95% interval {low:+.4f} to {high:+.4f}); "
        f"promote the champion ({evidence['champion']}) instead, or pass --force"
    )
