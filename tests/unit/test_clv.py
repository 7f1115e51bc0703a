"""The purchase and spend models reproduce Fader and Hardie's published CDNOW figures.

``tests/data/cdnow_summary.csv`` is the CDNOW sample of 2,357 customers as
summarised in their papers: repeat purchases ``x``, time of the last one
``t_x`` and age ``T`` in weeks, and mean repeat spend ``zbar``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnwatch.events import from_payload
from churnwatch.models.clv import BGNBD, CLVModel, GammaGamma, MeanSpend
from churnwatch.models.dataset import population_rows
from churnwatch.models.training import fit_clv, raw_frame
from churnwatch.sim.simulator import Simulation
from tests.reference import REFERENCE

CDNOW = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "cdnow_summary.csv")


def test_bg_nbd_matches_the_published_cdnow_fit() -> None:
    model = BGNBD.fit(CDNOW["x"], CDNOW["t_x"], CDNOW["T"])
    # Fader, Hardie & Lee (2005), table 1 and the log-likelihood beside it
    assert [round(v, 3) for v in (model.r, model.alpha, model.a, model.b)] == [
        0.243,
        4.414,
        0.793,
        2.426,
    ]
    params = np.array([model.r, model.alpha, model.a, model.b])
    ll = BGNBD.log_likelihood(params, *(CDNOW[c].to_numpy(float) for c in ("x", "t_x", "T")))
    assert round(ll, 1) == -9582.4
    # their worked example: x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in 39 weeks
    one = (np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert round(float(model.expected_purchases(39, *one)[0]), 3) == 1.226


def test_p_alive_by_hand() -> None:
    model = BGNBD(r=1.0, alpha=1.0, a=1.0, b=2.0)
    x, t_x, T = np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([3.0, 3.0])
    # no repeat purchase: never seen dropping out; x = 1: 1 / (1 + a/b * ((1+3)/(1+1))^2) = 1/3
    assert model.p_alive(x, t_x, T).round(6).tolist() == [1.0, round(1 / 3, 6)]


def test_gamma_gamma_matches_the_published_cdnow_fit() -> None:
    repeat = CDNOW[CDNOW["x"] > 0]
    model = GammaGamma.fit(repeat["x"], repeat["zbar"])
    # Fader & Hardie (2013): p = 6.25, q = 3.74, gamma = 15.44
    assert model.p == pytest.approx(6.25, abs=0.01)
    assert model.q == pytest.approx(3.74, abs=0.01)
    assert model.v == pytest.approx(15.44, abs=0.01)
    # spend of a customer without a repeat purchase: the population mean p*v/(q-1)
    spend = model.expected_spend(np.array([0.0, 2.0]), np.array([np.nan, 22.35]))
    assert spend[0] == pytest.approx(model.p * model.v / (model.q - 1))
    expected = model.p * (model.v + 2 * 22.35) / (model.p * 2 + model.q - 1)
    assert spend[1] == pytest.approx(expected)


def test_clv_columns_from_feature_rows() -> None:
    purchases, spend = BGNBD(r=0.243, alpha=4.414, a=0.793, b=2.426), GammaGamma(6.25, 3.74, 15.44)
    model = CLVModel(purchases, spend, horizon_days=39)
    rows = pd.DataFrame(
        {
            # the worked example as a feature row: 3 purchases, the last 8.43 days ago
            "purchases_lifetime": [3.0, np.nan],
            "days_since_first_purchase": [38.86, np.nan],
            "recency_days": [38.86 - 30.43, np.nan],
            "avg_order_value_365d": [22.35, np.nan],
        }
    )
    out = model.columns(rows)
    assert list(out.columns) == [
        "p_alive",
        "expected_purchases_39d",
        "clv_39d",
        "p_no_purchase_39d",
    ]
    assert round(out.loc[0, "expected_purchases_39d"], 3) == 1.226
    per_purchase = float(spend.expected_spend(np.array([2.0]), np.array([22.35]))[0])
    expected = out.loc[0, "expected_purchases_39d"] * per_purchase
    assert out.loc[0, "clv_39d"] == pytest.approx(expected)
    assert out.loc[1].isna().all()  # never bought: nothing to value
    assert CLVModel.from_dict(model.to_dict()) == model


def test_the_chance_of_no_purchase_in_the_horizon() -> None:
    model = BGNBD(r=0.243, alpha=4.414, a=0.793, b=2.426)
    x, t_x, T = np.array([2.0, 0.0]), np.array([30.43, 0.0]), np.array([38.86, 38.86])
    chance = model.p_no_purchase(39.0, x, t_x, T)
    # alive (chance p_alive) and silent for 39 days under a Gamma(r + x, alpha + T) rate, or gone
    silent = ((4.414 + 38.86) / (4.414 + 38.86 + 39.0)) ** (0.243 + x)
    alive = model.p_alive(x, t_x, T)
    assert chance == pytest.approx(1 - alive * (1 - silent))
    assert alive[1] == 1.0 and chance[1] == pytest.approx(silent[1])  # no repeat: cannot be gone
    assert np.all(model.p_no_purchase(0.0, x, t_x, T) == 1.0)  # nothing can happen in no time
    assert np.all(model.p_no_purchase(90.0, x, t_x, T) < chance)  # a longer horizon, less silence


def test_one_price_keeps_bg_nbd_and_values_spend_by_the_stated_fallback() -> None:
    """Every purchase at 25: Gamma-Gamma runs away, BG/NBD stays and spend is the price."""
    sim = Simulation(300, REFERENCE - timedelta(days=365), REFERENCE, seed=3)
    events = [
        from_payload({**e, "amount": 25.0} if e["type"] == "purchase" else e) for e in sim.events()
    ]
    rows = raw_frame(population_rows(events, events[-1].epoch_s))

    model, note = fit_clv(rows, 90.0)

    assert model is not None and model.spend == MeanSpend(25.0)
    assert note == model.note
    assert note is not None and note.startswith(
        "spend per purchase is each customer's own mean over the last year (else the buyers' "
        "mean, 25.00), not Gamma-Gamma: the spend (Gamma-Gamma) model's fit ran away ("
    )
    out = model.columns(rows)
    bought = rows["purchases_lifetime"] > 0
    assert bought.all() and out.notna().all().all()
    assert np.allclose(out["clv_90d"], out["expected_purchases_90d"] * 25.0)
    assert (out["clv_90d"] > 0).all()
    # the card keeps the fallback and its reason
    assert CLVModel.from_dict(model.to_dict()) == model
    assert "gamma_gamma" not in model.to_dict()


def test_a_customer_without_spend_in_the_year_takes_the_buyers_mean() -> None:
    fallback = MeanSpend(30.0)
    spend = fallback.expected_spend(np.array([2.0, 0.0, 4.0]), np.array([12.0, np.nan, 0.0]))
    assert spend.tolist() == [12.0, 30.0, 30.0]


def test_cards_written_before_the_spend_fallback_still_load() -> None:
    old = {
        "bg_nbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44},
        "horizon_days": 90.0,
    }
    model = CLVModel.from_dict(old)
    assert model.spend == GammaGamma(6.25, 3.74, 15.44) and model.note is None
    assert model.to_dict() == old
