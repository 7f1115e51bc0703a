"""Training a churn model on history snapshots, judged against an RFM baseline.

The model is scikit-learn gradient boosting (missing values handled natively)
with isotonic calibration, so its scores read as probabilities. Validation is
by time: the latest quarter of the cutoffs is held out, and only snapshots
whose label window closed before the first held-out cutoff are trained on. The
baseline, fitted and judged on the very same split in the same run, is a
logistic regression on recency, frequency and monetary value alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from churnwatch.features.row import FEATURES
from churnwatch.features.state import DAY_S
from churnwatch.models.dataset import Snapshot
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from churnwatch.events import COMPLAINT_CATEGORIES

CATEGORICAL = "last_complaint_category"
#: Days since the first event grow with the cutoff as long as the history is
#: younger than the customers, so the model would learn the calendar, not the
#: customer; days_since_signup (from the profile) carries true tenure.
_NOT_MODELLED = (CATEGORICAL, "tenure_days")
#: model inputs: every numeric feature, plus the newest complaint's category one-hot
MODEL_FEATURES: tuple[str, ...] = (
    *(f.name for f in FEATURES if f.name not in _NOT_MODELLED),
    *(f"{CATEGORICAL}_{cat}" for cat in COMPLAINT_CATEGORIES),
)
RFM_FEATURES = ("recency_days", "frequency_90d", "monetary_90d")

_RISING = (
    "recency",
    "interval_ratio",
    "complaints",
    "open_complaints",
    "overdue",
    "resolution",
    "unanswered",
    "days_since_engagement",
    "refund",
)
_FALLING = (
    "frequency_",
    "monetary_",
    "_trend",
    "satisfaction",
    "nps",
    "engagement_",
    "login_",
    "email_",
    "campaign_",
    "member_",
    "points_",
)


def direction(feature: str) -> int:
    """+1 when more of ``feature`` can only mean more churn risk, -1 less, 0 either.

    The directions are DOMAIN.md's warning indicators. Constraining the trees
    to them keeps the model from learning noise that does not hold over time
    (churn rates move between periods) and makes every contribution readable.
    """
    if feature.startswith(("complaints_90d_", "last_complaint_category_")):
        return 0  # which category matters is for the model to find
    if any(key in feature for key in _FALLING):
        return -1
    if any(key in feature for key in _RISING):
        return 1
    return 0


VALIDATION_SHARE = 0.25


class TrainingError(ValueError):
    """The history cannot train a model; ``str(exc)`` says why and what to do."""


def feature_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Model inputs from feature rows (empty values become NaN)."""
    frame = pd.DataFrame.from_records(list(rows), columns=[f.name for f in FEATURES])
    for cat in COMPLAINT_CATEGORIES:
        frame[f"{CATEGORICAL}_{cat}"] = (frame[CATEGORICAL] == cat).astype(float)
    return frame[list(MODEL_FEATURES)].astype(float)


def rfm_frame(frame: pd.DataFrame) -> pd.DataFrame:
    # a customer with no purchase is as far from buying as the window allows
    return frame[list(RFM_FEATURES)].fillna({"recency_days": 365.0})


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, precision in the top 5 % and 10 %, Brier score."""
    order = np.argsort(-p, kind="stable")
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "churn_rate": float(y.mean()),
    }
    for share in (5, 10):
        top = order[: max(1, round(len(p) * share / 100))]
        out[f"precision_top_{share}pct"] = float(y[top].mean())
    return {k: round(v, 4) for k, v in out.items()}


@dataclass
class Trained:
    """A fitted model with the evidence on its held-out quarter."""

    model: Any
    #: the columns of :func:`feature_frame` the model takes, in order
    features: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    #: (mean predicted, observed churn rate) per bin, for each of model and baseline
    calibration: dict[str, list[tuple[float, float]]]
    n_train: int
    n_valid: int
    train_cutoffs: tuple[float, float]
    valid_cutoffs: tuple[float, float]
    #: the reference customer of the reason codes: per column, the median over
    #: the training snapshots of customers who stayed (``None``: never observed)
    reference: dict[str, float | None]
    #: the RFM baseline fitted on the same snapshots (not saved with the model)
    baseline: Any = None


def time_split(cutoffs: np.ndarray, horizon_days: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks: train on labels settled before the held-out (latest) cutoffs begin."""
    distinct = np.unique(cutoffs)
    if len(distinct) < 2:
        raise TrainingError(
            f"only {len(distinct)} cutoff(s) in the history: need a longer history "
            "or a smaller --every-days to hold the latest ones out for validation"
        )
    first_valid = distinct[int(len(distinct) * (1 - VALIDATION_SHARE))]
    valid = cutoffs >= first_valid
    train = cutoffs + horizon_days * DAY_S <= first_valid
    if not train.any():
        raise TrainingError(
            "no training snapshot's label window closes before the validation cutoffs: "
            "the history must span more than twice the horizon after the warm-up"
        )
    return train, valid


def train(snapshots: Sequence[Snapshot], *, horizon_days: float, seed: int = 0) -> Trained:
    """Fit the model and the RFM baseline on the older snapshots; judge both on the newer."""
    if not snapshots:
        raise TrainingError("no snapshots: the history holds no customer active at any cutoff")
    frame = feature_frame([s.features for s in snapshots])
    y = np.array([s.churned for s in snapshots], dtype=int)
    cutoffs = np.array([s.cutoff_s for s in snapshots])
    train_mask, valid_mask = time_split(cutoffs, horizon_days)
    for name, mask in (("training", train_mask), ("validation", valid_mask)):
        if len(set(y[mask])) < 2:
            raise TrainingError(
                f"the {name} snapshots are all {'churned' if y[mask].all() else 'retained'}: "
                "both outcomes are needed to learn and to judge a model"
            )

    # A history without, say, complaints or surveys leaves some features empty
    # throughout; they carry nothing to learn from, so the model does without.
    usable = [c for c in MODEL_FEATURES if frame.loc[train_mask, c].notna().any()]
    frame = frame[usable]

    boosted = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.05,
        max_depth=4,
        min_samples_leaf=100,
        l2_regularization=1.0,
        monotonic_cst=[direction(c) for c in usable],
        random_state=seed,
    )
    model = CalibratedClassifierCV(boosted, method="isotonic", cv=3)
    model.fit(frame[train_mask], y[train_mask])
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    baseline.fit(rfm_frame(frame[train_mask]), y[train_mask])

    y_valid = y[valid_mask]
    scores = {
        "model": model.predict_proba(frame[valid_mask])[:, 1],
        "rfm_baseline": baseline.predict_proba(rfm_frame(frame[valid_mask]))[:, 1],
    }
    stayed = frame[train_mask & (y == 0)].median()
    reference = {c: (None if np.isnan(v) else round(float(v), 4)) for c, v in stayed.items()}
    calibration = {}
    for name, p in scores.items():
        observed, predicted = calibration_curve(y_valid, p, n_bins=10, strategy="quantile")
        calibration[name] = [
            (round(float(a), 4), round(float(b), 4))
            for a, b in zip(predicted, observed, strict=True)
        ]
    return Trained(
        model=model,
        features=tuple(usable),
        metrics={name: metrics(y_valid, p) for name, p in scores.items()},
        calibration=calibration,
        n_train=int(train_mask.sum()),
        n_valid=int(valid_mask.sum()),
        train_cutoffs=(float(cutoffs[train_mask].min()), float(cutoffs[train_mask].max())),
        valid_cutoffs=(float(cutoffs[valid_mask].min()), float(cutoffs[valid_mask].max())),
        reference=reference,
        baseline=baseline,
    )
