"""Which candidate is the champion, and when a promotion is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnwatch.models.candidates import ColumnScore, champion, refusal
from churnwatch.models.evidence import compare


def test_the_best_roc_auc_is_the_champion_and_a_tie_goes_to_the_simpler() -> None:
    metrics = {
        "learned": {"roc_auc": 0.81},
        "rfm": {"roc_auc": 0.78},
        "linear": {"roc_auc": 0.81},
        "purchase_model": {"roc_auc": 0.70},
    }
    assert champion(metrics) == "linear"  # tied with learned, and simpler
    assert champion({**metrics, "rfm": {"roc_auc": 0.82}}) == "rfm"


def test_a_promotion_is_refused_only_below_the_interval() -> None:
    losing = {"against": "rfm", "difference": -0.03, "interval": [-0.05, -0.01], "champion": "rfm"}
    assert refusal("learned", losing) == (
        "learned ranks worse than the rfm baseline on held-out data: ROC AUC -0.0300 "
        "(95% interval -0.0500 to -0.0100); promote the champion (rfm) instead, or pass --force"
    )
    unsure = {**losing, "interval": [-0.05, 0.002]}
    assert refusal("learned", unsure) is None  # not worse beyond the interval
    assert refusal("learned", {}) is None  # a card from before the comparison
    assert refusal("rfm", {"against": None, "champion": "rfm"}) is None  # no other baseline


def test_a_column_score_serves_the_probability_a_frame_holds() -> None:
    frame = pd.DataFrame({"p_no_purchase_90d": [0.2, np.nan, 1.3]})
    p = ColumnScore("p_no_purchase_90d").predict_proba(frame)
    assert p.tolist() == [[0.8, 0.2], [0.0, 1.0], [0.0, 1.0]]  # unknown counts as churned


def test_paired_differences_are_tighter_than_separate_intervals() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 3000)
    base = y * 0.3 + rng.random(3000)
    better = base + y * 0.05  # the same noise: a small, consistent gain
    comparison = compare(y, {"base": base, "better": better}, np.arange(3000) // 2, seed=1)
    difference, (low, high) = comparison.difference("better", "base")
    assert 0 < low <= difference <= high
    separate = comparison.intervals["better"]["roc_auc"]
    assert high - low < (separate[1] - separate[0]) / 3
