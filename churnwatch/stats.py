"""Interval statistics every layer may share (plain Python, no dependency).

The Wilson score interval lives here, below every layer, so that the backtest
(``offline/``) and the win-back uplift (``winback/``) compute it the same way
without one importing the other (the layer rules of ``pyproject.toml``).
"""

from __future__ import annotations

import math


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of the share ``successes / n`` (95 % at ``z=1.96``).

    Unlike the normal approximation it stays within [0, 1] and keeps a width for
    shares of 0 or 1 and for small ``n``. With ``n == 0`` nothing is known: (0, 1).
    """
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be from 0 to n (got {successes} of {n})")
    if n == 0:
        return 0.0, 1.0
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # rounding may leave a bound a hair past the share itself (at 0 of n, say)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))
