"""Customer lifetime value: BG/NBD for how often, Gamma-Gamma for how much.

Both models are fitted by maximum likelihood with ``scipy.optimize`` on the
logarithms of their parameters (Fader, Hardie & Lee 2005, "Counting your
customers the easy way"; Fader & Hardie 2013, "The Gamma-Gamma model of
monetary value"). ``pymc-marketing`` offers the same models, but its install
and cold fit cost far more than the few closed-form likelihoods used here.

Per customer the models need, as of a time ``T`` (all in days):

* ``x``: repeat purchases (purchases after the first);
* ``t_x``: days from the first to the last purchase;
* ``T``: days from the first purchase to the as-of time;
* ``m``: the mean purchase amount.

A feature row holds all of them (``purchases_lifetime``,
``days_since_first_purchase``, ``recency_days``, ``avg_order_value_365d``),
so :meth:`CLVModel.columns` reads its outputs straight from feature rows.
CLV over a horizon is undiscounted: expected purchases in it times the
expected spend per purchase.

When Gamma-Gamma cannot be fitted or runs away (every purchase at one price
leaves it no spread to learn from), BG/NBD is kept and spend per purchase
falls back to :class:`MeanSpend`, each customer's own mean purchase amount
(the population's when they bought nothing in the last year); the model's
``note`` says so and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

#: a customer without a single repeat purchase gets the population's mean spend
_MIN_REPEAT_FOR_SPEND = 1


def _fit(nll: Any, start: Sequence[float]) -> np.ndarray:
    """Minimise ``nll`` over log-parameters; the parameters themselves."""
    result = minimize(nll, np.log(start), method="L-BFGS-B", options={"ftol": 1e-14, "gtol": 1e-10})
    if not np.all(np.isfinite(result.x)):
        raise ValueError("the purchase model did not converge")
    fitted: np.ndarray = np.exp(result.x)
    return fitted


@dataclass(frozen=True)
class BGNBD:
    """Beta-geometric/NBD: purchase rate ~ Gamma(r, alpha), drop-out ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    @staticmethod
    def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
        """Summed log-likelihood of the histories ``(x, t_x, T)`` at ``params``."""
        r, alpha, a, b = params
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        common += betaln(a, b + x) - betaln(a, b)
        alive = -(r + x) * np.log(alpha + T)
        repeat = x > 0
        dropped = np.full_like(alive, -np.inf)
        dropped[repeat] = (
            np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
        )
        return float(np.sum(common + np.logaddexp(alive, dropped)))

    @classmethod
    def fit(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BGNBD:
        """Maximum-likelihood parameters for the histories ``(x, t_x, T)``."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))

        def nll(log_params: np.ndarray) -> float:
            return -cls.log_likelihood(np.exp(log_params), x, t_x, T) / len(x)

        return cls(*(float(v) for v in _fit(nll, (1.0, float(np.mean(T)) or 1.0, 1.0, 1.0))))

    def _odds_dropped(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Odds of having dropped out rather than still being alive, given the history."""
        ratio = np.where(
            x > 0,
            (self.a / np.maximum(self.b + x - 1, 1e-12))
            * ((self.alpha + T) / (self.alpha + t_x)) ** (self.r + x),
            0.0,
        )
        return ratio

    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Probability that each customer is still alive at ``T``."""
        return 1.0 / (1.0 + self._odds_dropped(x, t_x, T))

    def p_no_purchase(self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Probability of no purchase in the ``t`` days after ``T``, given the history.

        Dead, or alive and silent: an alive customer's rate is Gamma(r + x,
        alpha + T) given the history, and drop-out can only follow a purchase,
        so silence for ``t`` days has chance ``((alpha + T) / (alpha + T + t)) ** (r + x)``.
        Unlike ``p_alive``, which is 1 for every customer without a repeat
        purchase, this ranks sparse histories by how much silence they predict.
        """
        silent = ((self.alpha + T) / (self.alpha + T + t)) ** (self.r + x)
        alive = self.p_alive(x, t_x, T)
        chance: np.ndarray = 1.0 - alive * (1.0 - silent)
        return chance

    def expected_purchases(
        self, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """Expected purchases in the ``t`` days after ``T``, given the history."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        hyper = hyp2f1(r + x, b + x, a + b + x - 1, z)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyper
        expected: np.ndarray = head * body / (1.0 + self._odds_dropped(x, t_x, T))
        return expected


@dataclass(frozen=True)
class GammaGamma:
    """Spend per purchase ~ Gamma(p, nu), nu ~ Gamma(q, v) across customers."""

    p: float
    q: float
    v: float

    @staticmethod
    def log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
        """Summed log-likelihood of the mean spends ``m`` over ``x`` purchases each."""
        p, q, v = params
        px = p * x
        return float(
            np.sum(
                gammaln(px + q)
                - gammaln(px)
                - gammaln(q)
                + q * np.log(v)
                + (px - 1) * np.log(m)
                + px * np.log(x)
                - (px + q) * np.log(x * m + v)
            )
        )

    @classmethod
    def fit(cls, x: np.ndarray, m: np.ndarray) -> GammaGamma:
        """Maximum-likelihood parameters from customers with ``x >= 1`` and ``m > 0``."""
        x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
        keep = (x >= _MIN_REPEAT_FOR_SPEND) & (m > 0)
        x, m = x[keep], m[keep]
        if len(x) < 2:
            raise ValueError("too few repeat customers with spend to fit the spend model")

        def nll(log_params: np.ndarray) -> float:
            return -cls.log_likelihood(np.exp(log_params), x, m) / len(x)

        return cls(*(float(v) for v in _fit(nll, (1.0, 2.0, float(np.mean(m))))))

    def expected_spend(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Expected spend per future purchase, shrunk from ``m`` to the population mean."""
        x = np.asarray(x, dtype=float)
        m = np.nan_to_num(np.asarray(m, dtype=float))
        population = self.p * self.v / (self.q - 1)
        own = self.p * (self.v + x * m) / (self.p * x + self.q - 1)
        return np.where(x >= _MIN_REPEAT_FOR_SPEND, own, population)


@dataclass(frozen=True)
class MeanSpend:
    """The stated spend fallback: each customer's own mean spend, else the population's."""

    #: mean purchase amount of the buyers the model was fitted on
    population: float

    def expected_spend(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """``m`` where the customer has a mean spend, the population mean elsewhere."""
        m = np.asarray(m, dtype=float)
        return np.where(np.isfinite(m) & (m > 0), m, self.population)


#: fewest buyers the purchase and spend models are fitted on
MIN_BUYERS = 20
#: a fitted parameter beyond this factor of 1 either way ran to the edge of its space
RUNAWAY_FACTOR = 1e4


def _refuse_runaway(model: str, params: dict[str, float], likely: str) -> None:
    """Raise ``ValueError`` naming the wild parameters of a fit and their ``likely`` cause."""
    wild = {k: v for k, v in params.items() if not 1 / RUNAWAY_FACTOR <= v <= RUNAWAY_FACTOR}
    if wild:
        shown = ", ".join(f"{k} = {v:.3g}" for k, v in wild.items())
        raise ValueError(f"the {model} model's fit ran away ({shown}): {likely}")


def _fit_spend(x: np.ndarray, m: np.ndarray) -> GammaGamma:
    """Gamma-Gamma on the buyers ``(x, m)``; ``ValueError`` when it cannot be trusted."""
    spend = GammaGamma.fit(x, m)
    _refuse_runaway(
        "spend (Gamma-Gamma)",
        asdict(spend),
        "the customers' mean spends hardly differ (one price for everything, say)",
    )
    if spend.q <= 1:
        # the population's mean spend p * v / (q - 1) is then not finite
        raise ValueError(f"the spend model's q = {spend.q:.3g} leaves no finite mean spend")
    return spend


def _mean_spend(m: np.ndarray) -> MeanSpend:
    """:class:`MeanSpend` of the buyers' mean spends ``m`` (NaN: none in the last year)."""
    known = m[np.isfinite(m) & (m > 0)]
    if not known.size:
        raise ValueError("no buyer spent anything in the last year to value spend by")
    return MeanSpend(float(np.mean(known)))


def histories(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """``(x, t_x, T, m)`` of feature rows; NaN where a customer never bought."""
    count = frame["purchases_lifetime"].to_numpy(dtype=float)
    T = frame["days_since_first_purchase"].to_numpy(dtype=float)
    recency = frame["recency_days"].to_numpy(dtype=float)
    x = count - 1
    t_x = T - recency
    m = frame["avg_order_value_365d"].to_numpy(dtype=float)
    return x, t_x, T, m


@dataclass(frozen=True)
class CLVModel:
    """A store's fitted purchase and spend models, and the horizon their outputs cover."""

    purchases: BGNBD
    spend: GammaGamma | MeanSpend
    horizon_days: float
    #: which fallback is in use and why, in words (``None``: none is)
    note: str | None = None

    @property
    def names(self) -> tuple[str, str, str, str]:
        """The output columns: ``p_alive``, ``expected_purchases_<h>d``, ``clv_<h>d``, and
        ``p_no_purchase_<h>d``, the chance of no purchase at all within the horizon."""
        h = f"{self.horizon_days:g}d"
        return ("p_alive", f"expected_purchases_{h}", f"clv_{h}", f"p_no_purchase_{h}")

    @classmethod
    def fit(cls, frame: pd.DataFrame, horizon_days: float) -> CLVModel:
        """Fit both models on the feature rows of customers who bought at least once.

        Raises ``ValueError`` with the reason when the purchase model cannot be
        trusted: too few buyers, or a fit that ran away to the edge of its
        parameter space (as regular subscription payments make BG/NBD do: no
        drop-out between payments, so the likelihood grows without bound). A
        spend model that cannot be trusted gives way to :class:`MeanSpend`, and
        ``note`` says why.
        """
        x, t_x, T, m = histories(frame)
        bought = np.isfinite(x) & np.isfinite(T) & (x >= 0)
        if bought.sum() < MIN_BUYERS:
            raise ValueError(
                f"only {int(bought.sum())} buyers to fit the purchase model (needs {MIN_BUYERS})"
            )
        purchases = BGNBD.fit(x[bought], t_x[bought], T[bought])
        _refuse_runaway(
            "purchase (BG/NBD)",
            asdict(purchases),
            "the history does not look like independent repeat purchases "
            "(regular subscription payments, say)",
        )
        try:
            return cls(purchases, _fit_spend(x[bought], m[bought]), horizon_days)
        except (ValueError, ArithmeticError) as exc:
            # how often still holds without how much: keep BG/NBD, value by plain means
            fallback = _mean_spend(m[bought])
            note = (
                f"spend per purchase is each customer's own mean over the last year (else the "
                f"buyers' mean, {fallback.population:.2f}), not Gamma-Gamma: {exc}"
            )
            return cls(purchases, fallback, horizon_days, note)

    def columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The four outputs for each feature row (NaN for a customer who never bought)."""
        x, t_x, T, m = histories(frame)
        bought = np.isfinite(x) & np.isfinite(T) & (x >= 0)
        out = np.full((len(frame), 4), np.nan)
        if bought.any():
            xb, tb, Tb = x[bought], t_x[bought], T[bought]
            expected = self.purchases.expected_purchases(self.horizon_days, xb, tb, Tb)
            out[bought, 0] = self.purchases.p_alive(xb, tb, Tb)
            out[bought, 1] = expected
            out[bought, 2] = expected * self.spend.expected_spend(xb, m[bought])
            out[bought, 3] = self.purchases.p_no_purchase(self.horizon_days, xb, tb, Tb)
        return pd.DataFrame(out, columns=list(self.names), index=frame.index)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, as kept on the model card."""
        spend = "gamma_gamma" if isinstance(self.spend, GammaGamma) else "mean_spend"
        out: dict[str, Any] = {
            "bg_nbd": asdict(self.purchases),
            spend: asdict(self.spend),
            "horizon_days": self.horizon_days,
        }
        if self.note is not None:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CLVModel:
        """Inverse of :meth:`to_dict`; cards written before the spend fallback load too."""
        spend = (
            GammaGamma(**data["gamma_gamma"])
            if "gamma_gamma" in data
            else MeanSpend(**data["mean_spend"])
        )
        return cls(BGNBD(**data["bg_nbd"]), spend, data["horizon_days"], data.get("note"))
