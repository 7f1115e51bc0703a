"""Evidence on a simulated subscription business (:mod:`churnwatch.sim.subscriptions`).

One population is learned from, another judged, so no subscriber is seen twice.
Training follows ``churnwatch train`` (snapshots, candidates, held-out cutoffs),
once as it treats the history now (recognised as contractual: active
subscribers, retention by tenure) and once as before (every buyer of the last
horizon, BG/NBD). The judged population is scored every ``every_days`` among
subscribers whose subscription runs at the cutoff (by the truth), against the
truth "the subscription ends within the horizon", by the served model and by
the recency, tenure and activity baselines (fitted on the same snapshots).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from churnwatch.events import Event, from_payload
from churnwatch.features.row import feature_row
from churnwatch.features.state import DAY_S, CustomerState, apply
from churnwatch.models.candidates import fit_baselines
from churnwatch.models.contractual import NON_CONTRACTUAL, HistoryKind, recognise
from churnwatch.models.dataset import cutoffs, population_rows, snapshots
from churnwatch.models.evidence import compare
from churnwatch.models.training import Trained, model_frame, raw_frame, train
from churnwatch.sim.subscriptions import SubscriptionSimulation, SubscriptionTruth

#: the baselines the served score is judged against
BASELINES = ("recency", "tenure", "activity")


def _history(customers: int, start: datetime, end: datetime, seed: int) -> tuple[Any, ...]:
    sim = SubscriptionSimulation(customers, start, end, seed=seed)
    return [from_payload(e) for e in sim.events()], sim.truth()


def _train(
    events: Sequence[Event], horizon_days: float, every_days: int, history: HistoryKind | None
) -> tuple[Trained, list[Any]]:
    """Train as ``churnwatch train`` does; ``history`` forces a kind (``None``: recognised)."""
    at = cutoffs(
        events[0].epoch_s, events[-1].epoch_s, every_days=every_days, horizon_days=horizon_days
    )
    population = population_rows(events, at[-1])
    kind = history or recognise(raw_frame(population))
    snaps = list(snapshots(events, at, horizon_days=horizon_days, history=kind))
    trained = train(snaps, horizon_days=horizon_days, population=population, history=kind)
    return trained, snaps


def _truth_rows(
    events: Sequence[Event],
    truth: Sequence[SubscriptionTruth],
    at: Sequence[float],
    horizon_days: float,
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Feature rows, outcomes and customers of the running subscribers at each cutoff.

    Outcome 1: the subscription ends within the horizon after the cutoff.
    """
    ends = {
        t.customer_id: (datetime.fromisoformat(t.end).timestamp() if t.end else np.inf)
        for t in truth
    }
    states: dict[str, CustomerState] = {}
    rows, y, who = [], [], []
    i = 0

    def take(t: float) -> None:
        for cid, state in states.items():
            end = ends[cid]
            if state.purchase_count and end > t:
                rows.append(feature_row(state, t))
                y.append(end <= t + horizon_days * DAY_S)
                who.append(cid)

    for event in events:
        while i < len(at) and event.epoch_s > at[i]:
            take(at[i])
            i += 1
        states[event.customer_id] = apply(states.get(event.customer_id), event)
    return rows, np.array(y, dtype=int), np.array(who)


def evaluate(
    *,
    customers: int = 3000,
    days: int = 540,
    end: datetime,
    seed: int = 1,
    horizon_days: float = 90.0,
    every_days: int = 14,
    on_step: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Held-out figures before and after, and ROC AUC on truth, as one JSON-ready dict."""
    start = end - timedelta(days=days)
    on_step(f"simulating {customers:,} subscribers over {days} days, twice")
    learned, _ = _history(customers, start, end, seed)
    judged, truth = _history(customers, start, end, seed + 1)
    out: dict[str, Any] = {"events": len(learned)}
    served: dict[str, tuple[Trained, list[Any]]] = {}
    for name, forced in (("before", HistoryKind(NON_CONTRACTUAL, "forced")), ("after", None)):
        on_step(f"training {name}")
        trained, snaps = _train(learned, horizon_days, every_days, forced)
        served[name] = (trained, snaps)
        out[name] = {
            "history": trained.history.why if trained.history else None,
            "clv_note": trained.clv_note,
            "snapshots": len(snaps),
            "n_valid": trained.n_valid,
            "champion": trained.champion,
            "held_out": {
                n: {"roc_auc": m["roc_auc"], "interval": trained.intervals[n]["roc_auc"]}
                for n, m in trained.metrics.items()
            },
        }
    on_step("scoring the judged population against its truth")
    at = cutoffs(start.timestamp(), end.timestamp(), every_days=every_days)
    rows, y, who = _truth_rows(judged, truth, at, horizon_days)
    raw = raw_frame(rows)
    scores: dict[str, np.ndarray] = {}
    for name, (trained, _) in served.items():
        frame = model_frame(raw, trained.clv_model)
        scores[f"served_{name}"] = trained.model.predict_proba(frame[list(trained.features)])[:, 1]
    trained, snaps = served["after"]
    learn = model_frame(raw_frame([s.features for s in snaps]), trained.clv_model)
    outcome = np.array([s.churned for s in snaps], dtype=int)
    frame = model_frame(raw, trained.clv_model)
    for name, candidate in fit_baselines(learn, outcome, set(BASELINES)).items():
        scores[name] = candidate.scores(frame)
    judged_on = compare(y, scores, who)
    out["truth"] = {
        "rows": len(y),
        "ending_share": round(float(y.mean()), 4),
        "roc_auc": {
            n: {"roc_auc": m["roc_auc"], "interval": judged_on.intervals[n]["roc_auc"]}
            for n, m in judged_on.metrics.items()
        },
        "served_after_minus": {
            n: judged_on.difference("served_after", n) for n in (*BASELINES, "served_before")
        },
    }
    return out
