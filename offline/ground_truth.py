"""Evidence on known truth: scorers judged against the simulator's churners.

A model is trained on one simulated population and judged on another (a
different seed: other customers, same kind of history), where the true churn
date and reason of every customer are known:

* **ROC AUC on truth**: at every cutoff, customers who bought within the
  horizon and have not churned yet are scored; the label is whether they are
  truly leaving, that is, their drift toward the churn date has begun. (Whether
  the churn date merely falls within the next 90 days is a weaker target: the
  drift lasts 30 to 90 days, so many such customers still behave as usual.)
* **Alerts**: the population's events go through the live pipeline
  (:class:`~churnwatch.engine.pipeline.Pipeline`, the worker's own code) with
  each scorer. A churner is *caught* when an alert fires in the horizon before
  their churn date (*early*: at least 14 days before it); the **lead time** is
  the days from the first such alert to the churn date, and **reason
  accuracy** the share of caught churners whose first alert names their true
  reason. Customers who never churn but get an
  alert count as **false alarms**.

The model's alerts are judged twice: at the thresholds of ``alerts/policy.toml``,
and at those the replay recommendation picks for a team's capacity
(:mod:`churnwatch.alerts.economics`), from a backtest of the *learned*
population, so the judged one never informs its own thresholds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sklearn.metrics import roc_auc_score

from churnwatch import store
from churnwatch.alerts.config import Policy, load_playbook, load_policy
from churnwatch.engine.pipeline import Pipeline
from churnwatch.events import TOPIC_OF_TYPE, from_payload
from churnwatch.features.state import DAY_S
from churnwatch.models.dataset import cutoffs, population_rows, snapshots, warm_up_for
from churnwatch.models.registry import make_card
from churnwatch.models.rule import RuleScorer
from churnwatch.models.scoring import Scorer
from churnwatch.models.trained_scorer import ModelScorer, RFMScorer
from churnwatch.models.training import train
from churnwatch.offline.replay import replay_history
from churnwatch.offline.report import analyse
from churnwatch.records import ChurnAlert, RawRecord
from churnwatch.sim.simulator import Simulation, Truth, customers_for

HORIZON_DAYS = 90.0
BATCH = 1000
#: the retention team's capacity the bench recommends thresholds for: one alert a day
#: per this many customers (about 10 a day for the bench's two thousand)
CUSTOMERS_PER_DAILY_ALERT = 200
#: a churner is caught early when the first alert comes at least this many days ahead
EARLY_DAYS = 14.0


def _epoch(iso_time: str | None) -> float | None:
    return datetime.fromisoformat(iso_time).timestamp() if iso_time else None


def roc_on_truth(
    events: Sequence[Any],
    truth: Mapping[str, Truth],
    scorers: Mapping[str, Scorer],
    *,
    every_days: int = 14,
    horizon_days: float = HORIZON_DAYS,
) -> dict[str, float]:
    """ROC AUC of each scorer against the truth of who is leaving, over all cutoffs."""
    at = cutoffs(events[0].epoch_s, events[-1].epoch_s, every_days=every_days, horizon_days=0)
    rows, labels = [], []
    for snap in snapshots(events, at, horizon_days=horizon_days):
        churn = _epoch(truth[snap.customer_id].churn_date)
        if churn is not None and churn <= snap.cutoff_s:
            continue  # already gone: no longer a warning
        rows.append(snap.features)
        drift = _epoch(truth[snap.customer_id].drift_start)
        labels.append(drift is not None and drift <= snap.cutoff_s)
    y = np.array(labels, dtype=int)
    return {name: round(float(roc_auc_score(y, s.values(rows))), 4) for name, s in scorers.items()}


def pipeline_alerts(
    payloads: Iterable[dict[str, Any]],
    scorer: Scorer,
    db_url: str,
    *,
    now: datetime,
    policy: Policy | None = None,
) -> list[ChurnAlert]:
    """Every alert the worker's pipeline raises over ``payloads`` (time order) with ``scorer``."""
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    processor = Pipeline(
        engine,
        max_future_s=DAY_S,
        allowed_lateness_s=365 * DAY_S,
        clock=lambda: now,
        scorer=lambda: scorer,
        policy=policy,
    )
    alerts: list[ChurnAlert] = []
    batch: list[RawRecord] = []

    def flush() -> None:
        alerts.extend(processor.process(batch).alerts)
        batch.clear()

    for offset, payload in enumerate(payloads):
        topic = TOPIC_OF_TYPE[payload["type"]]
        key = payload["customer_id"].encode()
        batch.append(RawRecord(topic, 0, offset, key, orjson.dumps(payload)))
        if len(batch) == BATCH:
            flush()
    flush()
    engine.dispose()
    return alerts


def alert_evidence(
    alerts: Sequence[Mapping[str, Any]],
    truth: Mapping[str, Truth],
    *,
    horizon_days: float = HORIZON_DAYS,
) -> dict[str, float | int | None]:
    """Caught share, lead time, reason accuracy and false alarms of a run's alerts."""
    first: dict[str, tuple[float, str]] = {}
    alarmed: set[str] = set()
    for alert in sorted(alerts, key=lambda a: a["ts"]):
        cid = alert["customer_id"]
        ts = datetime.fromisoformat(alert["ts"]).timestamp()
        churn = _epoch(truth[cid].churn_date)
        if churn is None:
            alarmed.add(cid)
        elif churn - horizon_days * DAY_S <= ts < churn and cid not in first:
            first[cid] = (churn - ts, alert["reason"])
    churners = [t for t in truth.values() if t.churns]
    leads = sorted(lead / DAY_S for lead, _ in first.values())
    right = sum(reason == truth[cid].reason for cid, (_, reason) in first.items())
    stayers = len(truth) - len(churners)
    return {
        "alerts": len(alerts),
        "churners": len(churners),
        "caught_share": round(len(first) / len(churners), 4) if churners else None,
        "caught_14d_share": (
            round(sum(lead >= EARLY_DAYS for lead in leads) / len(churners), 4)
            if churners
            else None
        ),
        "median_lead_days": round(statistics.median(leads), 1) if leads else None,
        "reason_accuracy": round(right / len(first), 4) if first else None,
        "false_alarm_share": round(len(alarmed) / stayers, 4) if stayers else None,
    }


def evaluate(
    *,
    events: int,
    days: int = 365,
    seed: int = 1,
    workdir: Path,
    on_step: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train on population ``seed``, judge on population ``seed + 1``: the evidence table."""
    end = datetime(2026, 6, 1, tzinfo=UTC)
    start = end - timedelta(days=days)
    size = customers_for(events, days)
    on_step(f"simulating two populations of {size:,} customers over {days} days")
    learn = [from_payload(p) for p in Simulation(size, start, end, seed=seed).events()]
    judged_sim = Simulation(size, start, end, seed=seed + 1)
    judged_payloads = list(judged_sim.events())
    judged = [from_payload(p) for p in judged_payloads]
    truth = {t.customer_id: t for t in judged_sim.truth()}

    on_step(f"training on {len(learn):,} events")
    first, last = learn[0].epoch_s, learn[-1].epoch_s
    warm_up = warm_up_for(first, last, HORIZON_DAYS)
    at = cutoffs(first, last, every_days=7, horizon_days=HORIZON_DAYS, warm_up_days=warm_up)
    trained = train(
        list(snapshots(learn, at)),
        horizon_days=HORIZON_DAYS,
        seed=seed,
        population=population_rows(learn, at[-1]),
    )
    card = make_card(
        trained, horizon_days=HORIZON_DAYS, trained_from=start, trained_to=end, seed=seed, now=end
    )
    scorers: dict[str, Scorer] = {
        "model": ModelScorer(trained.model, card),
        "rfm_baseline": RFMScorer(trained.fitted["rfm"].model),
        "rule": RuleScorer(),
    }
    on_step(f"scoring {len(judged):,} events of the other population against its truth")
    result: dict[str, Any] = {
        "events_learned": len(learn),
        "events_judged": len(judged),
        "customers_judged": len(truth),
        "roc_auc_on_truth": roc_on_truth(judged, truth, scorers),
        "held_out": trained.metrics,
        "validation": trained.validation,
        "alerts": {},
    }
    for name, scorer in scorers.items():
        on_step(f"running the pipeline with {name}")
        db = workdir / f"{name}.db"
        db.unlink(missing_ok=True)
        raised = pipeline_alerts(
            judged_payloads, scorer, f"sqlite:///{db}", now=end + timedelta(days=1)
        )
        result["alerts"][name] = alert_evidence(raised, truth)

    capacity = max(1.0, size / CUSTOMERS_PER_DAILY_ALERT)
    on_step(f"recommending the model's thresholds for {capacity:g} alerts a day")
    policy = load_policy()
    learned = replay_history(learn, scorers["model"], policy, load_playbook(), partitions=1)
    findings = analyse(
        learned,
        policy,
        start=learned.first_s + HORIZON_DAYS * DAY_S,  # type: ignore[operator]
        end=learned.last_s,  # type: ignore[arg-type]
        horizon_days=HORIZON_DAYS,
        capacity_per_day=capacity,
        scorer=card.version,
    )
    on_step("running the pipeline with the model at the recommended thresholds")
    db = workdir / "recommended.db"
    db.unlink(missing_ok=True)
    raised = pipeline_alerts(
        judged_payloads,
        scorers["model"],
        f"sqlite:///{db}",
        now=end + timedelta(days=1),
        policy=findings.recommended,
    )
    evidence = alert_evidence(raised, truth)
    days_judged = max((judged[-1].epoch_s - judged[0].epoch_s) / DAY_S, 1.0)
    result["alerts"]["model_recommended"] = {
        **evidence,
        "alerts_per_day": round(len(raised) / days_judged, 2),
        "capacity_per_day": capacity,
        "thresholds": {t: th.model_dump() for t, th in findings.recommended.thresholds.items()},
        "held": dict(findings.plan.held) if findings.plan else {},
    }
    return result
