"""How sure a held-out comparison is: metrics with bootstrap intervals over customers.

A customer appears at several held-out cutoffs, and their snapshots are not
independent, so the bootstrap resamples *customers* (all of a customer's
snapshots go in or out together). Every candidate is judged on the very same
resamples, which makes a paired difference between two candidates far
tighter than comparing their separate intervals.

The metrics are computed from per-score-value sums of weights, so one
resample costs two ``bincount`` calls per candidate: ROC AUC (the
Mann-Whitney statistic, ties counted half), PR AUC (average precision, a
step at each distinct score, as scikit-learn computes it), the Brier score,
and the precision in the top 5 and 10 % (a tie that straddles the cut counts
in proportion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

METRICS = ("roc_auc", "pr_auc", "brier", "precision_top_5pct", "precision_top_10pct")
#: resamples of customers behind each interval
ROUNDS = 200
#: the interval's coverage
LEVEL = 0.95
#: whether a higher value of each metric is better
HIGHER_IS_BETTER = {name: name != "brier" for name in METRICS}


@dataclass(frozen=True)
class _Binned:
    """One candidate's scores, as the distinct values and each row's place among them."""

    values: np.ndarray
    place: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> _Binned:
        values, place = np.unique(np.asarray(scores, dtype=float), return_inverse=True)
        return cls(values, place)


def _from_sums(values: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    """The metrics from positive and negative weight per distinct score (ascending)."""
    total_pos, total_neg = pos.sum(), neg.sum()
    total = total_pos + total_neg
    below = np.cumsum(neg) - neg  # negatives strictly below each value
    auc = float(np.sum(pos * (below + neg / 2)) / (total_pos * total_neg))
    # from the highest score down: precision at each threshold, weighted by recall gained
    tp, weight = np.cumsum(pos[::-1]), np.cumsum((pos + neg)[::-1])
    precision = np.divide(tp, weight, out=np.zeros_like(tp), where=weight > 0)
    pr_auc = float(np.sum(pos[::-1] / total_pos * precision))
    brier = float(np.sum(pos * (1 - values) ** 2 + neg * values**2) / total)
    out = {"roc_auc": auc, "pr_auc": pr_auc, "brier": brier}
    for share in (5, 10):
        out[f"precision_top_{share}pct"] = _top_precision(pos[::-1], neg[::-1], total, share)
    return out


def _top_precision(pos: np.ndarray, neg: np.ndarray, total: float, share: int) -> float:
    """Precision among the top ``share`` % of weight (scores descending)."""
    wanted = max(total * share / 100, min(total, 1.0))
    weight = pos + neg
    before = np.cumsum(weight) - weight
    taken = np.clip(wanted - before, 0.0, weight)  # the part of each value's rows taken
    fraction = np.divide(taken, weight, out=np.zeros_like(taken), where=weight > 0)
    return float(np.sum(pos * fraction) / np.sum(taken))


def _metrics(binned: _Binned, y: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    size = len(binned.values)
    pos = np.bincount(binned.place, weights=weights * y, minlength=size)
    neg = np.bincount(binned.place, weights=weights * (1 - y), minlength=size)
    return _from_sums(binned.values, pos, neg)


def point_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The :data:`METRICS` and the churn rate of ``scores`` against outcomes ``y``."""
    y = np.asarray(y, dtype=float)
    out = _metrics(_Binned.of(scores), y, np.ones(len(y)))
    out["churn_rate"] = float(y.mean())
    return {k: round(v, 4) for k, v in out.items()}


@dataclass(frozen=True)
class Comparison:
    """Held-out metrics of several candidates with intervals, from shared resamples."""

    #: candidate → metric → value
    metrics: dict[str, dict[str, float]]
    #: candidate → metric → ``[low, high]``
    intervals: dict[str, dict[str, list[float]]]
    #: candidate → the ROC AUC of each resample (for paired differences)
    roc_auc_draws: dict[str, np.ndarray]

    def difference(self, first: str, second: str) -> tuple[float, list[float]]:
        """ROC AUC of ``first`` minus ``second``, and its interval over the resamples."""
        point = self.metrics[first]["roc_auc"] - self.metrics[second]["roc_auc"]
        draws = self.roc_auc_draws[first] - self.roc_auc_draws[second]
        return round(point, 4), _interval(draws)


def _interval(draws: np.ndarray) -> list[float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return [round(float(low), 4), round(float(high), 4)]


def compare(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    customers: np.ndarray,
    *,
    rounds: int = ROUNDS,
    seed: int = 0,
) -> Comparison:
    """Judge every candidate's ``scores`` on outcomes ``y``, resampling ``customers``."""
    y = np.asarray(y, dtype=float)
    _, group = np.unique(customers, return_inverse=True)
    groups = int(group.max()) + 1
    rng = np.random.default_rng(seed)
    # each round draws as many customers as there are, with replacement
    counts = rng.multinomial(groups, np.full(groups, 1 / groups), size=rounds)
    binned = {name: _Binned.of(p) for name, p in scores.items()}
    draws: dict[str, dict[str, list[float]]] = {name: {m: [] for m in METRICS} for name in scores}
    for round_counts in counts:
        weights = round_counts[group].astype(float)
        if not (weights * y).any() or not (weights * (1 - y)).any():
            continue  # a resample with one outcome only judges nothing
        for name, b in binned.items():
            for metric, value in _metrics(b, y, weights).items():
                draws[name][metric].append(value)
    return Comparison(
        metrics={name: point_metrics(y, p) for name, p in scores.items()},
        intervals={
            name: {m: _interval(np.array(v)) for m, v in per.items()} for name, per in draws.items()
        },
        roc_auc_draws={name: np.array(per["roc_auc"]) for name, per in draws.items()},
    )
