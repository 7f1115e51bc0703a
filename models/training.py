"""Training a churn model on history snapshots, judged against RFM and BG/NBD baselines.

The model is scikit-learn gradient boosting (missing values handled natively)
with isotonic calibration, so its scores read as probabilities. Its inputs are
the feature rows plus the customer-value outputs of a BG/NBD and Gamma-Gamma
fit on the same training rows (:mod:`churnwatch.models.clv`).

Validation holds out the latest quarter of the cutoffs. When enough earlier
cutoffs have a label window that closed before the first held-out one, the
model learns from those alone (a time split). A short history leaves too few;
then the earlier cutoffs are learned from in customer-grouped folds: each fold
learns from the customers outside it and is judged on the held-out cutoffs of
the customers in it, so no customer is learned from and judged. Either way,
after validation the model is fitted again on every settled snapshot; the card
keeps the held-out metrics and says which validation was done.

The baselines, fitted and judged on the very same split in the same run, are
logistic regressions on recency, frequency and monetary value alone, and on
the BG/NBD outputs alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from churnwatch.events import COMPLAINT_CATEGORIES
from churnwatch.features.row import FEATURES
from churnwatch.features.state import DAY_S
from churnwatch.models.clv import CLVModel
from churnwatch.models.dataset import Snapshot

CATEGORICAL = "last_complaint_category"
#: Days since the first event grow with the cutoff as long as the history is
#: younger than the customers, so the model would learn the calendar, not the
#: customer; days_since_signup (from the profile) carries true tenure.
_NOT_MODELLED = (CATEGORICAL, "tenure_days", "days_since_first_purchase", "purchases_lifetime")
#: model inputs: every numeric feature, plus the newest complaint's category one-hot
MODEL_FEATURES: tuple[str, ...] = (
    *(f.name for f in FEATURES if f.name not in _NOT_MODELLED),
    *(f"{CATEGORICAL}_{cat}" for cat in COMPLAINT_CATEGORIES),
)
RFM_FEATURES = ("recency_days", "frequency_90d", "monetary_90d")

_RISING = (
    "recency",
    "rhythm",
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
    "p_alive",
    "expected_purchases_",
    "clv_",
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
#: fewer distinct cutoffs than this settled before the held-out ones: grouped folds instead
MIN_TRAIN_CUTOFFS = 3
GROUP_FOLDS = 5


class TrainingError(ValueError):
    """The history cannot train a model; ``str(exc)`` says why and what to do."""


def raw_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every column of the feature rows, as they are."""
    return pd.DataFrame.from_records(list(rows), columns=[f.name for f in FEATURES])


def model_frame(raw: pd.DataFrame, clv: CLVModel | None = None) -> pd.DataFrame:
    """Model inputs from :func:`raw_frame` (empty values become NaN), with ``clv``'s outputs."""
    frame = raw.copy()
    for cat in COMPLAINT_CATEGORIES:
        frame[f"{CATEGORICAL}_{cat}"] = (frame[CATEGORICAL] == cat).astype(float)
    out = frame[list(MODEL_FEATURES)].astype(float)
    if clv is not None:
        out = pd.concat([out, clv.columns(frame)], axis=1)
    return out


def feature_frame(rows: Sequence[Mapping[str, Any]], clv: CLVModel | None = None) -> pd.DataFrame:
    """Model inputs from feature rows (empty values become NaN), with ``clv``'s outputs."""
    return model_frame(raw_frame(rows), clv)


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


def bg_nbd_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The BG/NBD baseline's inputs: probability alive and expected purchases."""
    columns = [c for c in frame.columns if c == "p_alive" or c.startswith("expected_purchases_")]
    return frame[columns].fillna(0.0)


@dataclass
class Trained:
    """A fitted model with the evidence on its held-out cutoffs."""

    model: Any
    #: the columns of :func:`feature_frame` the model takes, in order
    features: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    #: (mean predicted, observed churn rate) per bin, for the model and each baseline
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
    #: the CLV model's parameters (:meth:`CLVModel.to_dict`); ``None`` when it could not fit
    clv: dict[str, Any] | None = None
    #: how the held-out metrics were obtained, in words
    validation: str = ""
    #: snapshots the saved model was fitted on after validation: every settled one
    n_refit: int = 0

    @property
    def clv_model(self) -> CLVModel | None:
        """The fitted CLV model, if any."""
        return None if self.clv is None else CLVModel.from_dict(self.clv)


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
    return train, valid


@dataclass
class _Fitted:
    model: Any
    baseline: Any
    bg_nbd: Any
    clv: CLVModel | None
    columns: list[str]
    #: how many snapshots it learned from
    n_rows: int

    def scores(self, raw: pd.DataFrame) -> dict[str, np.ndarray]:
        frame = model_frame(raw, self.clv)
        out = {
            "model": self.model.predict_proba(frame[self.columns])[:, 1],
            "rfm_baseline": self.baseline.predict_proba(rfm_frame(frame))[:, 1],
        }
        if self.bg_nbd is not None:
            out["bg_nbd_baseline"] = self.bg_nbd.predict_proba(bg_nbd_frame(frame))[:, 1]
        return out


def _both_outcomes(y: np.ndarray, name: str) -> None:
    if len(set(y)) < 2:
        raise TrainingError(
            f"the {name} snapshots are all {'churned' if y.all() else 'retained'}: "
            "both outcomes are needed to learn and to judge a model"
        )


def fit_clv(rows: pd.DataFrame, horizon_days: float) -> CLVModel | None:
    """The CLV model of ``rows``; ``None`` when too few repeat buyers to fit it."""
    try:
        return CLVModel.fit(rows, horizon_days)
    except ValueError:
        return None


def _fit(
    raw: pd.DataFrame,
    y: np.ndarray,
    mask: np.ndarray,
    horizon_days: float,
    seed: int,
    clv: CLVModel | None,
) -> _Fitted:
    """The model and both baselines fitted on the rows of ``mask``."""
    _both_outcomes(y[mask], "training")
    # the isotonic calibration's folds, as ``cv=3`` makes them for a classifier:
    # named, to see which rows each of its models learns from
    folds = StratifiedKFold(n_splits=3)
    retained, churned = np.bincount(y[mask], minlength=2)
    if min(retained, churned) < folds.n_splits:
        few = f"{churned} churned" if churned < retained else f"{retained} retained"
        raise TrainingError(
            f"only {few} among the training snapshots: calibration needs "
            f"{folds.n_splits} of each outcome at least"
        )
    frame = model_frame(raw[mask], clv)
    # A history without, say, complaints or surveys leaves some features empty
    # throughout; they carry nothing to learn from, so the model does without.
    # Each calibration fold learns from a part of the rows, the earlier cutoffs
    # first: a feature that fills in only later (the purchase rhythm of monthly
    # buyers needs three purchase days) can be empty in one part, and the trees
    # cannot bin a column without a value ("window shape cannot be larger than
    # input array shape"). Such a feature is left out as well.
    present = frame.notna().to_numpy()
    parts = [learn for learn, _ in folds.split(frame, y[mask])]
    usable = [c for i, c in enumerate(frame.columns) if all(present[p, i].any() for p in parts)]
    boosted = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.05,
        max_depth=4,
        min_samples_leaf=100,
        l2_regularization=1.0,
        monotonic_cst=[direction(c) for c in usable],
        random_state=seed,
    )
    model = CalibratedClassifierCV(boosted, method="isotonic", cv=folds)
    model.fit(frame[usable], y[mask])
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    baseline.fit(rfm_frame(frame), y[mask])
    bg_nbd = None
    if clv is not None:
        bg_nbd = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        bg_nbd.fit(bg_nbd_frame(frame), y[mask])
    return _Fitted(model, baseline, bg_nbd, clv, usable, int(mask.sum()))


def _grouped_scores(
    raw: pd.DataFrame,
    y: np.ndarray,
    customers: np.ndarray,
    learn: np.ndarray,
    valid: np.ndarray,
    horizon_days: float,
    seed: int,
    clv: CLVModel | None,
) -> dict[str, np.ndarray]:
    """Held-out scores of ``valid`` rows, each from a fold that never saw its customer."""
    n_folds = min(GROUP_FOLDS, len(np.unique(customers[valid])))
    if n_folds < 2:
        raise TrainingError("fewer than two customers at the held-out cutoffs: cannot validate")
    held: dict[str, np.ndarray] = {}
    for inside, outside in GroupKFold(n_splits=n_folds).split(raw, groups=customers):
        fold_learn = np.zeros(len(y), dtype=bool)
        fold_learn[inside] = True
        fold_learn &= learn
        fold_judge = np.zeros(len(y), dtype=bool)
        fold_judge[outside] = True
        fold_judge &= valid
        if not fold_judge.any():
            continue
        fitted = _fit(raw, y, fold_learn, horizon_days, seed, clv)
        for name, p in fitted.scores(raw[fold_judge]).items():
            held.setdefault(name, np.full(len(y), np.nan))[fold_judge] = p
    # a baseline missing in any fold is not judged at all
    return {name: p[valid] for name, p in held.items() if not np.isnan(p[valid]).any()}


def train(
    snapshots: Sequence[Snapshot],
    *,
    horizon_days: float,
    seed: int = 0,
    population: Sequence[dict[str, Any]] | None = None,
) -> Trained:
    """Validate on the latest cutoffs, then fit the model on every settled snapshot.

    The CLV model learns from ``population``, the feature rows of every buyer as
    of the last cutoff (:func:`~churnwatch.models.dataset.population_rows`);
    without it, from the snapshots, where nobody has stopped buying yet.
    """
    if not snapshots:
        raise TrainingError("no snapshots: the history holds no customer active at any cutoff")
    raw = raw_frame([s.features for s in snapshots])
    clv = fit_clv(raw_frame(population) if population else raw, horizon_days)
    y = np.array([s.churned for s in snapshots], dtype=int)
    cutoffs = np.array([s.cutoff_s for s in snapshots])
    customers = np.array([s.customer_id for s in snapshots])
    train_mask, valid_mask = time_split(cutoffs, horizon_days)
    _both_outcomes(y[valid_mask], "validation")
    if len(np.unique(cutoffs[train_mask])) >= MIN_TRAIN_CUTOFFS:
        scores = _fit(raw, y, train_mask, horizon_days, seed, clv).scores(raw[valid_mask])
        validation = (
            "time split: learned from the cutoffs whose label window closed before the "
            f"held-out latest {VALIDATION_SHARE:.0%} of cutoffs"
        )
    else:
        # time_split holds out at most the latest three quarters: earlier cutoffs exist
        train_mask = cutoffs < cutoffs[valid_mask].min()
        scores = _grouped_scores(raw, y, customers, train_mask, valid_mask, horizon_days, seed, clv)
        validation = (
            f"customer-grouped folds: too few label windows closed before the held-out latest "
            f"{VALIDATION_SHARE:.0%} of cutoffs for a time split, so {GROUP_FOLDS} folds by "
            "customer learned from the earlier cutoffs and were judged on the held-out ones"
        )
    final = _fit(raw, y, np.ones(len(y), dtype=bool), horizon_days, seed, clv)
    validation += f"; then refitted on all {final.n_rows:,} settled snapshots"

    frame = model_frame(raw, final.clv)[final.columns]
    stayed = frame[y == 0].median()
    reference = {c: (None if np.isnan(v) else round(float(v), 4)) for c, v in stayed.items()}
    y_valid = y[valid_mask]
    calibration = {}
    for name, p in scores.items():
        observed, predicted = calibration_curve(y_valid, p, n_bins=10, strategy="quantile")
        calibration[name] = [
            (round(float(a), 4), round(float(b), 4))
            for a, b in zip(predicted, observed, strict=True)
        ]
    return Trained(
        model=final.model,
        features=tuple(final.columns),
        metrics={name: metrics(y_valid, p) for name, p in scores.items()},
        calibration=calibration,
        n_train=int(train_mask.sum()),
        n_valid=int(valid_mask.sum()),
        train_cutoffs=(float(cutoffs[train_mask].min()), float(cutoffs[train_mask].max())),
        valid_cutoffs=(float(cutoffs[valid_mask].min()), float(cutoffs[valid_mask].max())),
        reference=reference,
        baseline=final.baseline,
        clv=None if final.clv is None else final.clv.to_dict(),
        validation=validation,
        n_refit=final.n_rows,
    )
