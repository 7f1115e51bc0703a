"""The worker's Prometheus metrics, fed from each batch's result.

One registry per worker (not the library's global one), so that tests and
several apps in one process never share counters. ``streams/`` serves it on
``/metrics``; Grafana's worker dashboard reads it through Prometheus.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from churnwatch.engine.commit import Committed
from churnwatch.engine.intake import Decoded

__all__ = ["CONTENT_TYPE_LATEST", "WorkerMetrics"]

#: scoring and batch durations range from a few ms (rule) to seconds (large batches)
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerMetrics:
    """Counters, histograms and gauges of one worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "churnwatch_events_in", "Records consumed from the input topics", ["topic"], registry=r
        )
        self.events_stored = Counter(
            "churnwatch_events_stored", "New valid events stored and folded", registry=r
        )
        self.redelivered = Counter(
            "churnwatch_events_redelivered", "Records already stored (redelivery)", registry=r
        )
        self.dead_letters = Counter(
            "churnwatch_dead_letters", "Records sent to dead-letters", registry=r
        )
        self.alerts = Counter(
            "churnwatch_alerts",
            "Churn alerts raised",
            ["value_tier", "reason", "risk_level"],
            registry=r,
        )
        self.tasks = Counter("churnwatch_winback_tasks", "Win-back tasks created", registry=r)
        self.outcomes = Counter(
            "churnwatch_winback_outcomes", "CRM outcome reports consumed", registry=r
        )
        self.events_out = Counter(
            "churnwatch_records_out", "Records published", ["topic"], registry=r
        )
        self.scoring = Histogram(
            "churnwatch_scoring_seconds",
            "Wall time of one batch's model call",
            buckets=_SECONDS,
            registry=r,
        )
        self.batch = Histogram(
            "churnwatch_batch_seconds",
            "Wall time to validate, store, fold, score and judge one batch",
            buckets=_SECONDS,
            registry=r,
        )
        self.order_waited = Counter(
            "churnwatch_order_waited",
            "Records let go for counting while a topic of their partition was passed over "
            "for being idle CHURNWATCH_ORDER_IDLE_S, not for being caught up",
            registry=r,
        )
        self.lag = Gauge(
            "churnwatch_consumer_lag",
            "Records between the consumer's position and the end of the partition",
            ["topic", "partition"],
            registry=r,
        )

    def observe_consumed(self, topics: Mapping[str, int], decoded: Decoded) -> None:
        """Count a consumed batch (``topics``: topic → records) and its invalid records."""
        for topic, count in topics.items():
            self.events_in.labels(topic).inc(count)
        self.dead_letters.inc(len(decoded.dead_letters))

    def observe_batch(self, result: Committed, seconds: float) -> None:
        """Count one folded batch of valid records, which took ``seconds``."""
        self.events_stored.inc(result.stored)
        self.redelivered.inc(result.redelivered)
        self.dead_letters.inc(len(result.dead_letters))
        for alert in result.alerts:
            self.alerts.labels(alert["value_tier"], alert["reason"], alert["risk_level"]).inc()
        self.tasks.inc(len(result.tasks))
        if result.scored:
            self.scoring.observe(result.scoring_s)
        self.batch.observe(seconds)

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        """Record how far ``topic``/``partition`` is behind its end offset."""
        self.lag.labels(topic, str(partition)).set(max(lag, 0))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
