"""The worklist's query (``GET /api/cases``) as the alerts table grows.

Fills a fresh store with ``--alerts`` synthetic alerts (three to a case, half
of them ended) and times :func:`churnwatch.streams.feed.list_cases` with the
default filter (open cases, counts by tier, reason, level, segment, owner and
status): the best of ``--repeats`` calls. SQLite always; with ``--postgres``
also the test suite's PostgreSQL server (``tests/pg.py``), in a schema of its
own that is dropped after. Prints one JSON object as its last line.

    python -m bench.cases --alerts 100000 --postgres
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from churnwatch import store
from churnwatch.streams.feed import CaseFilter, list_cases
from tests.pg import pg_schema

#: alerts per case: an opening alert and two escalations or repeats
PER_CASE = 3
REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)


def synthetic_alerts(count: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """``count`` alert rows, :data:`PER_CASE` to a case, one customer per case."""
    rng = random.Random(seed)
    for i in range(count):
        case = i // PER_CASE
        ended = rng.random() < 0.5
        yield {
            "alert_id": f"a{i}",
            "case_id": f"c{case}",
            "customer_id": f"customer-{case}",
            "ts": REFERENCE + timedelta(minutes=i),
            "score": rng.random(),
            "risk_level": rng.choice(("watch", "high", "critical")),
            "value_tier": rng.choice(("high", "potential", "general")),
            "segments": {"region": rng.choice(("north", "south", "east", "west"))},
            "reason": rng.choice(("price", "service", "competitor", "needs_changed")),
            "reason_codes": [],
            "model_version": "bench",
            "lifecycle_stage": "active",
            "trigger": f"e{i}",
            "status": "expired" if ended else "open",
            "ended_at": REFERENCE if ended else None,
            "created_at": REFERENCE,
            "value_at_risk": rng.random() * 1000,
        }


def seconds_per_call(url: str, count: int, repeats: int) -> float:
    """Best wall seconds of the default worklist query on a store holding ``count`` alerts."""
    engine = store.make_engine(url)
    try:
        store.upgrade(engine)
        rows = list(synthetic_alerts(count))
        with engine.begin() as conn:
            for at in range(0, len(rows), 5000):
                conn.execute(store.alerts.insert(), rows[at : at + 5000])
        best = float("inf")
        with engine.connect() as conn:
            for _ in range(repeats):
                started = time.perf_counter()
                list_cases(conn, CaseFilter())
                best = min(best, time.perf_counter() - started)
        return best
    finally:
        engine.dispose()


@contextmanager
def _sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'cases.db'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000, help="alerts in the store")
    parser.add_argument("--repeats", type=int, default=3, help="calls timed; the best counts")
    parser.add_argument(
        "--postgres", action="store_true", help="measure the test suite's PostgreSQL too"
    )
    args = parser.parse_args()
    stores = {"sqlite": _sqlite()}
    if args.postgres:
        stores["postgresql"] = pg_schema()
    result: dict[str, Any] = {"alerts": args.alerts, "cases": -(-args.alerts // PER_CASE)}
    for name, location in stores.items():
        with location as url:
            result[f"{name}_ms"] = round(seconds_per_call(url, args.alerts, args.repeats) * 1000)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
