"""Contractual (subscription) histories: recognised, and valued by retention by tenure.

**Recognising one.** In a subscription business customers pay at regular
intervals; in a shop they buy when they please. Among the customers with at
least :data:`MIN_GAPS` gaps between purchase days in the last year (so that
chance regularity is rare), a customer pays *regularly* when the coefficient of
variation of those gaps (``interval_cv_365d``) is at most :data:`REGULAR_CV`.
Purchases at random times (a Poisson process) have gaps with a CV of 1, and
with three gaps a CV of 0.25 or less happens for about 8 % of them (2 % with
four); a monthly charge a few days late now and then stays below 0.1. The
history is *contractual* when at least :data:`CONTRACTUAL_SHARE` of those
customers pay regularly, and there are :data:`MIN_REGULAR` of them at least;
its billing period is the median typical gap of the regular payers. A
subscription whose customers also buy add-ons at random times is not
recognised (their gaps are irregular); it is then valued as a retail history.

**Active and lapsed.** A subscriber is *lapsed* once more than their own
billing period plus a grace of :data:`GRACE_SHARE` of it has passed since their
last payment (a charge retried for a week is no cancellation; a month without
one is). Their own period is their typical gap, or the history's while they
have paid once.

**Retention by tenure.** The shifted-beta-geometric model (Fader & Hardie
2007, "How to project customer retention"): at each renewal a subscriber
cancels with their own chance ``theta``, Beta(alpha, beta) across subscribers,
so the survivors are ever more loyal and retention rises with tenure. It is
fitted by maximum likelihood on the periods each customer paid for (counted
from their profile's signup when it lies before the history): lapsed ones
cancelled after their last, active ones are censored, and those who were
subscribed before the history began count given that they stayed that long.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln

from churnwatch.models.clv import CLVModel

CONTRACTUAL = "contractual"
NON_CONTRACTUAL = "non-contractual"
#: gaps between purchase days in the year that a customer needs to be judged regular
MIN_GAPS = 3
#: the largest coefficient of variation of a regular payer's gaps
REGULAR_CV = 0.25
#: share of the judged customers that must pay regularly for a contractual history
CONTRACTUAL_SHARE = 0.5
#: fewest regular payers a contractual history needs
MIN_REGULAR = 20
#: the grace after a missed renewal, as a share of the billing period
GRACE_SHARE = 0.25
#: fewest subscribers the retention model is fitted on
MIN_SUBSCRIBERS = 20


@dataclass(frozen=True)
class HistoryKind:
    """Whether a history is contractual, why, and its billing period."""

    kind: str
    #: the evidence, in words
    why: str
    #: the typical days between payments (contractual histories only)
    period_days: float | None = None

    @property
    def contractual(self) -> bool:
        """Whether customers pay a subscription rather than buy when they please."""
        return self.kind == CONTRACTUAL


def recognise(frame: pd.DataFrame) -> HistoryKind:
    """The kind of history the feature rows ``frame`` (every buyer, as of one time) show."""
    cv = frame["interval_cv_365d"].to_numpy(dtype=float)
    judged = (frame["frequency_365d"].to_numpy(dtype=float) >= MIN_GAPS + 1) & np.isfinite(cv)
    regular = judged & (cv <= REGULAR_CV)
    n_judged, n_regular = int(judged.sum()), int(regular.sum())
    share = n_regular / n_judged if n_judged else 0.0
    evidence = (
        f"{share:.0%} of the {n_judged:,} customers with {MIN_GAPS + 1} or more purchases in "
        f"the last year pay at regular intervals (gaps' coefficient of variation at most "
        f"{REGULAR_CV:g})"
    )
    if share < CONTRACTUAL_SHARE or n_regular < MIN_REGULAR:
        return HistoryKind(NON_CONTRACTUAL, f"{evidence}: purchases, not subscriptions")
    period = float(np.median(frame["purchase_interval_days"].to_numpy(dtype=float)[regular]))
    return HistoryKind(CONTRACTUAL, f"{evidence}, typically every {period:.0f} days", period)


def billing_period(own: npt.ArrayLike, typical: float) -> np.ndarray:
    """Each customer's billing period: their typical gap, or ``typical`` without one."""
    days = np.asarray(own, dtype=float)
    return np.where(np.isfinite(days) & (days >= 1.0), days, typical)


def lapsed(recency_days: npt.ArrayLike, period_days: npt.ArrayLike) -> np.ndarray:
    """Whether more than a period and its grace has passed since the last payment."""
    recency = np.asarray(recency_days, dtype=float)
    return recency > np.asarray(period_days, dtype=float) * (1 + GRACE_SHARE)


@dataclass(frozen=True)
class ShiftedBetaGeometric:
    """Cancellation chance at each renewal ~ Beta(alpha, beta) across subscribers."""

    alpha: float
    beta: float

    def log_survival(self, periods: np.ndarray) -> np.ndarray:
        """Log of the chance to renew past ``periods`` paid: S(t) = B(a, b + t) / B(a, b)."""
        survival: np.ndarray = betaln(self.alpha, self.beta + periods) - betaln(
            self.alpha, self.beta
        )
        return survival

    @staticmethod
    def log_likelihood(
        params: np.ndarray, periods: np.ndarray, cancelled: np.ndarray, before: np.ndarray
    ) -> float:
        """Summed log-likelihood: ``periods`` paid, then cancelled or (censored) still paying.

        ``before`` are the periods paid before the history began: a customer is
        in it only because they renewed that long, so each term is conditional
        on it (left truncation; without it long-standing subscribers would look
        like proof that nobody leaves).
        """
        a, b = params
        base = betaln(a, b)
        # P(T = t) = B(a + 1, b + t - 1) / B(a, b); still paying after t: S(t - 1)
        gone = betaln(a + 1, b + periods - 1) - base
        staying = betaln(a, b + periods - 1) - base
        entered = betaln(a, b + before) - base
        return float(np.sum(np.where(cancelled, gone, staying) - entered))

    @classmethod
    def fit(
        cls, periods: npt.ArrayLike, cancelled: npt.ArrayLike, before: npt.ArrayLike = 0.0
    ) -> ShiftedBetaGeometric:
        """Maximum-likelihood parameters of ``periods`` paid (at least 1 each), ``before``
        of them before the history began."""
        t = np.asarray(periods, dtype=float)
        gone = np.asarray(cancelled, dtype=bool)
        earlier = np.broadcast_to(np.asarray(before, dtype=float), t.shape)
        if not gone.any():
            raise ValueError("no subscriber has cancelled yet: retention cannot be estimated")

        def nll(log_params: np.ndarray) -> float:
            return -cls.log_likelihood(np.exp(log_params), t, gone, earlier) / len(t)

        result = minimize(nll, np.zeros(2), method="L-BFGS-B")
        if not np.all(np.isfinite(result.x)):
            raise ValueError("the retention model did not converge")
        return cls(*(float(v) for v in np.exp(result.x)))


def periods_paid(frame: pd.DataFrame, period_days: np.ndarray) -> np.ndarray:
    """Periods each customer has paid for: their payments, or, when their signup is
    known and lies further back, the periods from it to their last payment."""
    payments = frame["purchases_lifetime"].to_numpy(dtype=float)
    signup = frame["days_since_signup"].to_numpy(dtype=float)
    to_last = signup - frame["recency_days"].to_numpy(dtype=float)
    # a charge comes within hours of its billing day: round to whole periods
    periods: np.ndarray = np.fmax(payments, np.round(to_last / period_days) + 1)
    return periods


@dataclass(frozen=True)
class RetentionModel:
    """A contractual history's value model: the columns of
    :class:`~churnwatch.models.clv.CLVModel`, from retention by tenure."""

    retention: ShiftedBetaGeometric
    #: the history's billing period, for customers who have paid once
    period_days: float
    #: the buyers' mean payment, for a customer with none in the last year
    mean_amount: float
    horizon_days: float

    @property
    def names(self) -> tuple[str, str, str, str]:
        """The same output columns as the purchase model's (``p_alive`` first)."""
        h = f"{self.horizon_days:g}d"
        return ("p_alive", f"expected_purchases_{h}", f"clv_{h}", f"p_no_purchase_{h}")

    @classmethod
    def fit(cls, frame: pd.DataFrame, horizon_days: float, period_days: float) -> RetentionModel:
        """Fit on the feature rows of every buyer as of one time; ``ValueError`` if it cannot."""
        bought = frame["purchases_lifetime"].to_numpy(dtype=float) >= 1
        if bought.sum() < MIN_SUBSCRIBERS:
            raise ValueError(
                f"only {int(bought.sum())} subscribers to fit retention (needs {MIN_SUBSCRIBERS})"
            )
        rows = frame[bought]
        period = billing_period(rows["purchase_interval_days"], period_days)
        gone = lapsed(rows["recency_days"], period)
        periods = periods_paid(rows, period)
        before = periods - rows["purchases_lifetime"].to_numpy(dtype=float)
        retention = ShiftedBetaGeometric.fit(periods, gone, before)
        amounts = rows["avg_order_value_365d"].to_numpy(dtype=float)
        known = amounts[np.isfinite(amounts) & (amounts > 0)]
        if not known.size:
            raise ValueError("no subscriber paid anything in the last year to value by")
        return cls(retention, period_days, float(np.mean(known)), horizon_days)

    def columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The four outputs for each feature row (NaN for a customer who never paid).

        Renewals fall every period after the last payment; one overdue within
        the grace may still come. A subscriber with ``n`` periods paid renews
        the ``j``-th next with chance ``S(n + j - 1) / S(n - 1)``; a lapsed one
        renews nothing. The worth is the expected payments times the
        customer's own mean payment.
        """
        paid = frame["purchases_lifetime"].to_numpy(dtype=float) >= 1
        period = billing_period(frame["purchase_interval_days"], self.period_days)
        recency = frame["recency_days"].to_numpy(dtype=float)
        n = np.where(paid, periods_paid(frame, period), 1.0)
        due = np.maximum(period - recency, 0.0)  # days to the next renewal; 0 if overdue
        renewals = np.where(due <= self.horizon_days, (self.horizon_days - due) // period + 1, 0)
        base = self.retention.log_survival(n - 1)
        steps = np.arange(int(np.nanmax(renewals, initial=0)))
        chance = np.exp(self.retention.log_survival(n[:, None] + steps[None, :]) - base[:, None])
        expected = np.sum(np.where(steps[None, :] < renewals[:, None], chance, 0.0), axis=1)
        next_renewal = chance[:, 0] if steps.size else np.ones(len(frame))
        gone = lapsed(recency, period)
        amount = frame["avg_order_value_365d"].to_numpy(dtype=float)
        amount = np.where(np.isfinite(amount) & (amount > 0), amount, self.mean_amount)
        p_alive = np.where(gone, 0.0, np.where(recency < period, 1.0, next_renewal))
        expected = np.where(gone, 0.0, expected)
        silent = np.where(gone | (renewals == 0), 1.0, 1.0 - next_renewal)
        out = np.column_stack([p_alive, expected, expected * amount, silent])
        out[~paid] = np.nan
        return pd.DataFrame(out, columns=list(self.names), index=frame.index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, as kept on the model card (``kind`` tells it apart)."""
        return {
            "kind": CONTRACTUAL,
            "sbg": asdict(self.retention),
            "period_days": self.period_days,
            "mean_amount": self.mean_amount,
            "horizon_days": self.horizon_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetentionModel:
        """Inverse of :meth:`to_dict`."""
        return cls(
            ShiftedBetaGeometric(**data["sbg"]),
            data["period_days"],
            data["mean_amount"],
            data["horizon_days"],
        )


#: a store's value model: the purchase model (retail), or retention by tenure (subscriptions)
ValueModel = CLVModel | RetentionModel


def value_model_from_dict(data: dict[str, Any]) -> ValueModel:
    """The value model of a card's ``clv`` (either model's ``to_dict``)."""
    if data.get("kind") == CONTRACTUAL:
        return RetentionModel.from_dict(data)
    return CLVModel.from_dict(data)
