"""Training churn scorers on history snapshots: learned models against baselines.

Every candidate of :mod:`churnwatch.models.candidates` is fitted on the same
snapshots and judged on the same held-out cutoffs, with bootstrap intervals
over customers (:mod:`churnwatch.models.evidence`). The learned models are
scikit-learn gradient boosting (missing values handled natively) with
isotonic calibration, so their scores read as probabilities; one of them also
takes the customer-value outputs of a BG/NBD and Gamma-Gamma fit
(:mod:`churnwatch.models.clv`) as inputs.

Validation holds out the latest quarter of the cutoffs. When enough earlier
cutoffs have a label window that closed before the first held-out one, the
candidates learn from those alone (a time split). A short history leaves too
few; then the earlier cutoffs are learned from in customer-grouped folds: each
fold learns from the customers outside it and is judged on the held-out
cutoffs of the customers in it, so no customer is learned from and judged.
Either way, after validation the chosen candidate (the champion unless asked
for another) is fitted again on every settled snapshot; the card keeps every
candidate's held-out metrics and says which validation was done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import GroupKFold, StratifiedKFold

from churnwatch.events import COMPLAINT_CATEGORIES
from churnwatch.features.row import FEATURES
from churnwatch.features.state import DAY_S
from churnwatch.models.candidate_names import (
    CANDIDATES,
    LEARNED,
    LEARNED_BTYD,
    LINEAR,
    RFM_FEATURES,
    is_baseline,
)
from churnwatch.models.candidates import (
    Candidate,
    champion,
    fill_recency,
    fit_baselines,
    logistic,
)
from churnwatch.models.clv import CLVModel
from churnwatch.models.contractual import (
    HistoryKind,
    RetentionModel,
    ValueModel,
    recognise,
    value_model_from_dict,
)
from churnwatch.models.dataset import Snapshot
from churnwatch.models.evidence import Comparison, compare

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

_RISING = (
    "p_no_purchase",
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

    The directions are those of the warning indicators (docs/features.md). Constraining the trees
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
#: folds of the learned models' isotonic calibration
CALIBRATION_FOLDS = 3


class TrainingError(ValueError):
    """The history cannot train a model; ``str(exc)`` says why and what to do."""


def raw_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every column of the feature rows, as they are."""
    return pd.DataFrame.from_records(list(rows), columns=[f.name for f in FEATURES])


def model_frame(raw: pd.DataFrame, clv: ValueModel | None = None) -> pd.DataFrame:
    """Model inputs from :func:`raw_frame` (empty values become NaN), with ``clv``'s outputs."""
    frame = raw.copy()
    for cat in COMPLAINT_CATEGORIES:
        frame[f"{CATEGORICAL}_{cat}"] = (frame[CATEGORICAL] == cat).astype(float)
    out = frame[list(MODEL_FEATURES)].astype(float)
    if clv is not None:
        out = pd.concat([out, clv.columns(frame)], axis=1)
    return out


def feature_frame(rows: Sequence[Mapping[str, Any]], clv: ValueModel | None = None) -> pd.DataFrame:
    """Model inputs from feature rows (empty values become NaN), with ``clv``'s outputs."""
    return model_frame(raw_frame(rows), clv)


def rfm_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The RFM baseline's inputs of a model frame."""
    return fill_recency(frame[list(RFM_FEATURES)])


@dataclass
class Trained:
    """The candidate chosen to be saved, fitted, with the evidence of every candidate."""

    #: the chosen candidate's fitted model (``predict_proba`` over :attr:`features`)
    model: Any
    #: the columns of :func:`feature_frame` the model takes, in order
    features: tuple[str, ...]
    #: candidate → held-out metrics
    metrics: dict[str, dict[str, float]]
    #: candidate → metric → bootstrap interval over customers ``[low, high]``
    intervals: dict[str, dict[str, list[float]]]
    #: (mean predicted, observed churn rate) per bin, for each candidate
    calibration: dict[str, list[tuple[float, float]]]
    n_train: int
    n_valid: int
    train_cutoffs: tuple[float, float]
    valid_cutoffs: tuple[float, float]
    #: the reference customer of the reason codes: per column, the median over
    #: the training snapshots of customers who stayed (``None``: never observed)
    reference: dict[str, float | None]
    #: the candidate saved (:mod:`churnwatch.models.candidates`)
    candidate: str
    #: the candidate with the best held-out ROC AUC
    champion: str
    #: the saved candidate's ROC AUC against the best other baseline, with its interval
    evidence: dict[str, Any]
    #: refitted on every settled snapshot: the saved candidate and the RFM baseline
    fitted: dict[str, Candidate]
    #: the value model's parameters (its ``to_dict``); ``None`` when it could not fit
    clv: dict[str, Any] | None = None
    #: why there is no purchase model, or which fallback it uses and why
    clv_note: str | None = None
    #: how the held-out metrics were obtained, in words
    validation: str = ""
    #: snapshots the saved model was fitted on after validation: every settled one
    n_refit: int = 0
    #: contractual or non-contractual, and why (:func:`~churnwatch.models.contractual.recognise`)
    history: HistoryKind | None = None

    @property
    def clv_model(self) -> ValueModel | None:
        """The fitted value model, if any."""
        return None if self.clv is None else value_model_from_dict(self.clv)


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


def _scores(
    fitted: dict[str, Candidate], raw: pd.DataFrame, clv: ValueModel | None
) -> dict[str, np.ndarray]:
    frame = model_frame(raw, clv)
    return {name: candidate.scores(frame) for name, candidate in fitted.items()}


def _both_outcomes(y: np.ndarray, name: str) -> None:
    if len(set(y)) < 2:
        raise TrainingError(
            f"the {name} snapshots are all {'churned' if y.all() else 'retained'}: "
            "both outcomes are needed to learn and to judge a model"
        )


def fit_clv(
    rows: pd.DataFrame, horizon_days: float, history: HistoryKind | None = None
) -> tuple[ValueModel | None, str | None]:
    """The value model of ``rows`` and what it stands in for, or ``None`` and why there is none.

    A contractual ``history`` is valued by retention by tenure, any other by
    BG/NBD and Gamma-Gamma (with its spend fallback).
    """
    try:
        if history is not None and history.contractual and history.period_days:
            model = RetentionModel.fit(rows, horizon_days, history.period_days)
            sbg = model.retention
            return model, (
                "subscriptions, not independent purchases: customers are valued by retention "
                f"by tenure (shifted-beta-geometric, alpha = {sbg.alpha:.3g}, beta = "
                f"{sbg.beta:.3g}; billing every {model.period_days:.0f} days), not BG/NBD"
            )
        clv = CLVModel.fit(rows, horizon_days)
        return clv, clv.note
    except (ValueError, ArithmeticError) as exc:
        return None, (
            f"no purchase model: {exc}; customer value falls back to the run rate of the "
            "last year's spend, and the purchase-model candidates are left out"
        )


def _fit_learned(name: str, frame: pd.DataFrame, y: np.ndarray, seed: int) -> Candidate:
    """Calibrated gradient boosting on the columns of ``frame`` observed in its rows."""
    # A history without, say, complaints or surveys leaves some features empty
    # throughout; they carry nothing to learn from, so the model does without.
    # Each calibration fold learns from a part of the rows, the earlier cutoffs
    # first: a feature that fills in only later (the purchase rhythm of monthly
    # buyers needs three purchase days) can be empty in one part, and the trees
    # cannot bin a column without a value ("window shape cannot be larger than
    # input array shape"). Such a feature is left out as well.
    # the isotonic calibration's folds, as ``cv=3`` makes them for a classifier:
    # named, to see which rows each of its models learns from
    folds = StratifiedKFold(n_splits=CALIBRATION_FOLDS)
    present = frame.notna().to_numpy()
    parts = [learn for learn, _ in folds.split(frame, y)]
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
    model.fit(frame[usable], y)
    return Candidate(name, model, tuple(usable))


def _fit_linear(frame: pd.DataFrame, y: np.ndarray) -> Candidate:
    """A scaled, L2-regularised logistic regression on the columns observed in its rows.

    Less flexible than the trees, and so less taken by patterns of the training
    period that do not hold later (on the simulation it ranks the held-out
    cutoffs better than they do).
    """
    usable = tuple(c for c in frame.columns if frame[c].notna().any())
    return Candidate(LINEAR, logistic().fit(frame[list(usable)], y), usable)


def _fit(
    raw: pd.DataFrame,
    y: np.ndarray,
    mask: np.ndarray,
    seed: int,
    clv: ValueModel | None,
    names: set[str],
) -> dict[str, Candidate]:
    """The candidates of ``names`` fitted on the rows of ``mask`` (those these rows can fit)."""
    _both_outcomes(y[mask], "training")
    retained, churned = np.bincount(y[mask], minlength=2)
    if min(retained, churned) < CALIBRATION_FOLDS:
        few = f"{churned} churned" if churned < retained else f"{retained} retained"
        raise TrainingError(
            f"only {few} among the training snapshots: calibration needs "
            f"{CALIBRATION_FOLDS} of each outcome at least"
        )
    frame = model_frame(raw[mask], clv)
    fitted = fit_baselines(frame, y[mask], names)
    if LINEAR in names:
        fitted[LINEAR] = _fit_linear(frame[list(MODEL_FEATURES)], y[mask])
    if LEARNED in names:
        fitted[LEARNED] = _fit_learned(LEARNED, frame[list(MODEL_FEATURES)], y[mask], seed)
    if LEARNED_BTYD in names and clv is not None:
        fitted[LEARNED_BTYD] = _fit_learned(LEARNED_BTYD, frame, y[mask], seed)
    return fitted


def _grouped_scores(
    raw: pd.DataFrame,
    y: np.ndarray,
    customers: np.ndarray,
    learn: np.ndarray,
    valid: np.ndarray,
    seed: int,
    clv: ValueModel | None,
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
        fitted = _fit(raw, y, fold_learn, seed, clv, set(CANDIDATES))
        for name, p in _scores(fitted, raw[fold_judge], clv).items():
            held.setdefault(name, np.full(len(y), np.nan))[fold_judge] = p
    # a candidate missing in any fold is not judged at all
    return {name: p[valid] for name, p in held.items() if not np.isnan(p[valid]).any()}


def _evidence(comparison: Comparison, chosen: str, champion_name: str) -> dict[str, Any]:
    """``chosen``'s ROC AUC against the best other baseline, with the paired interval."""
    others = [n for n in comparison.metrics if is_baseline(n) and n != chosen]
    if not others:
        return {"against": None, "champion": champion_name}
    best = max(others, key=lambda n: comparison.metrics[n]["roc_auc"])
    difference, interval = comparison.difference(chosen, best)
    return {
        "against": best,
        "difference": difference,
        "interval": interval,
        "champion": champion_name,
    }


def train(
    snapshots: Sequence[Snapshot],
    *,
    horizon_days: float,
    seed: int = 0,
    population: Sequence[dict[str, Any]] | None = None,
    candidate: str | None = None,
    history: HistoryKind | None = None,
) -> Trained:
    """Judge every candidate on the latest cutoffs, then refit one on every settled snapshot.

    The one refitted is ``candidate``, or else the champion (the best held-out
    ROC AUC). The CLV model learns from ``population``, the feature rows of
    every buyer as of the last cutoff
    (:func:`~churnwatch.models.dataset.population_rows`); without it, from the
    snapshots, where nobody has stopped buying yet. ``history`` is the kind of
    history the snapshots were taken from; without it, it is recognised from
    the same rows.
    """
    if candidate is not None and candidate not in CANDIDATES:
        raise TrainingError(f"no candidate {candidate!r}: choose one of {', '.join(CANDIDATES)}")
    if not snapshots:
        raise TrainingError("no snapshots: the history holds no customer active at any cutoff")
    raw = raw_frame([s.features for s in snapshots])
    values = raw_frame(population) if population else raw
    history = history or recognise(values)
    clv, clv_note = fit_clv(values, horizon_days, history)
    y = np.array([s.churned for s in snapshots], dtype=int)
    cutoffs = np.array([s.cutoff_s for s in snapshots])
    customers = np.array([s.customer_id for s in snapshots])
    train_mask, valid_mask = time_split(cutoffs, horizon_days)
    _both_outcomes(y[valid_mask], "validation")
    if len(np.unique(cutoffs[train_mask])) >= MIN_TRAIN_CUTOFFS:
        fitted = _fit(raw, y, train_mask, seed, clv, set(CANDIDATES))
        scores = _scores(fitted, raw[valid_mask], clv)
        validation = (
            "time split: learned from the cutoffs whose label window closed before the "
            f"held-out latest {VALIDATION_SHARE:.0%} of cutoffs"
        )
    else:
        # time_split holds out at most the latest three quarters: earlier cutoffs exist
        train_mask = cutoffs < cutoffs[valid_mask].min()
        scores = _grouped_scores(raw, y, customers, train_mask, valid_mask, seed, clv)
        validation = (
            f"customer-grouped folds: too few label windows closed before the held-out latest "
            f"{VALIDATION_SHARE:.0%} of cutoffs for a time split, so {GROUP_FOLDS} folds by "
            "customer learned from the earlier cutoffs and were judged on the held-out ones"
        )
    y_valid = y[valid_mask]
    comparison = compare(y_valid, scores, customers[valid_mask], seed=seed)
    best = champion(comparison.metrics)
    chosen = candidate or best
    if chosen not in scores:
        raise TrainingError(
            f"the {chosen} candidate cannot be fitted on this history (its inputs are never "
            f"observed, or the purchase model did not fit): choose one of {', '.join(scores)}"
        )
    everything = np.ones(len(y), dtype=bool)
    final = _fit(raw, y, everything, seed, clv, {chosen, "rfm"})
    validation += f"; then {chosen} was refitted on all {len(y):,} settled snapshots"

    frame = model_frame(raw, clv)
    stayed = frame[y == 0].median()
    reference = {c: (None if np.isnan(v) else round(float(v), 4)) for c, v in stayed.items()}
    calibration = {}
    for name, p in scores.items():
        observed, predicted = calibration_curve(y_valid, p, n_bins=10, strategy="quantile")
        calibration[name] = [
            (round(float(a), 4), round(float(b), 4))
            for a, b in zip(predicted, observed, strict=True)
        ]
    return Trained(
        model=final[chosen].model,
        features=final[chosen].columns,
        metrics=comparison.metrics,
        intervals=comparison.intervals,
        calibration=calibration,
        n_train=int(train_mask.sum()),
        n_valid=int(valid_mask.sum()),
        train_cutoffs=(float(cutoffs[train_mask].min()), float(cutoffs[train_mask].max())),
        valid_cutoffs=(float(cutoffs[valid_mask].min()), float(cutoffs[valid_mask].max())),
        reference=reference,
        candidate=chosen,
        champion=best,
        evidence=_evidence(comparison, chosen, best),
        fitted=final,
        clv=None if clv is None else clv.to_dict(),
        clv_note=clv_note,
        validation=validation,
        n_refit=len(y),
        history=history,
    )
