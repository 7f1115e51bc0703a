"""Random but reproducible assignment of a case to a control group or an action."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from churnwatch.alerts.config import HOLDOUT

__all__ = ["HOLDOUT", "assign"]


def assign(
    customer_id: str, case_id: str, salt: str, control_share: float, arms: Sequence[str]
) -> str:
    """HOLDOUT with probability ``control_share``, else one of ``arms`` uniformly."""
    if not arms:
        raise ValueError("no action to assign")
    digest = hashlib.sha256("\x1f".join((salt, customer_id, case_id)).encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 < control_share:
        return HOLDOUT
    return arms[int.from_bytes(digest[8:16], "big") % len(arms)]
