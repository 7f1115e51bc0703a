"""Randomised holdouts: which alerted cases get an action, which one, and which get none.

A win-back that "worked" cannot be told from a customer who would have come back
anyway unless some comparable cases get no contact at all. :func:`assign` draws,
for each case, either :data:`HOLDOUT` (a task is recorded with that action, and
never sent) with probability ``control_share``, or one of the arms being tested
(the playbook's action first, then any alternatives), uniformly.

The draw is a SHA-256 of the salt, the customer id and the case id, joined by
the unit separator ``\\x1f`` (which no id may hold, so that two different
triples can never be joined into the same bytes). The first 8 bytes of the
digest decide holdout or not; the next 8, independent of them, pick the arm.
The same inputs give the same answer on every machine and in every run, so the
worker and a replay of the same history assign alike, and a redelivered alert
cannot switch a customer from control to treated. Changing the salt starts a
fresh randomisation (a new experiment).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from churnwatch.alerts.config import HOLDOUT

__all__ = ["HOLDOUT", "assign"]

_SEPARATOR = "\x1f"
_SCALE = 2**64


def _digest(salt: str, customer_id: str, case_id: str) -> bytes:
    parts = (salt, customer_id, case_id)
    if any(_SEPARATOR in part for part in parts):
        # a separator inside a part would let two different triples hash alike
        raise ValueError("salt, customer_id and case_id may not contain \\x1f")
    return hashlib.sha256(_SEPARATOR.join(parts).encode("utf-8")).digest()


def assign(
    customer_id: str, case_id: str, salt: str, control_share: float, arms: Sequence[str]
) -> str:
    """The action of this case: :data:`HOLDOUT` with probability ``control_share``, else
    one of ``arms``, each equally likely.

    ``arms`` is the playbook's action first, then the alternatives being tested; it
    must not be empty. A ``control_share`` of 0 never holds a case out, 1 always does.
    Pure: the same arguments always give the same action.
    """
    if not arms:
        raise ValueError("arms must name at least one action")
    if not 0.0 <= control_share <= 1.0:
        raise ValueError(f"control_share must be from 0 to 1 (got {control_share})")
    digest = _digest(salt, customer_id, case_id)
    # a uniform draw in [0, 1) from the first 8 bytes: strictly below the share is control
    if int.from_bytes(digest[:8], "big") / _SCALE < control_share:
        return HOLDOUT
    # the arm from the next 8 bytes, independent of the first (modulo bias below 1e-18)
    return arms[int.from_bytes(digest[8:16], "big") % len(arms)]
