"""The candidate scorers by name, with no heavy imports (the command line's help reads them).

:mod:`churnwatch.models.candidates` fits them.
"""

from __future__ import annotations

LINEAR = "linear"
LEARNED = "learned"
LEARNED_BTYD = "learned_btyd"
PURCHASE_MODEL = "purchase_model"
RFM_FEATURES = ("recency_days", "frequency_90d", "monetary_90d")
#: the logistic baselines and the columns each reads
LOGISTIC_BASELINES: dict[str, tuple[str, ...]] = {
    "rfm": RFM_FEATURES,
    "recency": ("recency_days",),
    "tenure": ("days_since_signup",),
    "activity": (
        "frequency_30d",
        "frequency_90d",
        "engagement_30d",
        "engagement_90d",
        "login_30d",
        "support_contact_30d",
        "complaints_90d",
    ),
}
#: every baseline, simplest first: on a tie the earlier one is the champion
BASELINES = (PURCHASE_MODEL, *LOGISTIC_BASELINES)
#: every candidate in the order a tie is broken in
CANDIDATES = (*BASELINES, LINEAR, LEARNED, LEARNED_BTYD)
#: what each candidate is, in words, for the model card and ``train --help``
DESCRIPTIONS = {
    PURCHASE_MODEL: "BG/NBD's chance of no purchase within the horizon",
    "rfm": "logistic regression on recency, 90-day frequency and spend",
    "recency": "logistic regression on days since the last purchase",
    "tenure": "logistic regression on days since signup",
    "activity": "logistic regression on recent purchase, engagement and complaint counts",
    LINEAR: "regularised logistic regression on every warning indicator",
    LEARNED: "gradient boosting on the warning indicators",
    LEARNED_BTYD: "gradient boosting on the warning indicators and the purchase model's outputs",
}


def is_baseline(name: str) -> bool:
    """Whether ``name`` is a baseline rather than a learned model."""
    return name in BASELINES
