"""A sustained load on the real worker, with its memory over time (issue 10).

Produces simulated records at ``--rate`` per second for ``--seconds`` to a
worker on the embedded broker and a fresh SQLite store, samples the worker's
resident memory every ``--every`` seconds, and prints one JSON object as its
last line: the samples (seconds, RSS MiB, customers stored, events stored),
and the memory growth after the first quarter of the run per customer added
in that time, next to the growth of the stored state (its JSON). A customer's
state grows with the days of history it holds (up to a year of day buckets),
so memory may grow with the state; memory that grows while neither the
population nor the state does is a leak. With ``--cache`` below the
population, the worker holds that many records at most (issue 22); with
``--customers`` the population is that large, however few events it has, so
that the cache fills and stays full (issue 33). Memory is the worker's and its
fold process's together: the records are held in the fold process.

    python -m bench.soak --rate 1000 --seconds 600
    python -m bench.soak --rate 1000 --seconds 600 --cache 500
    python -m bench.soak --rate 1000 --seconds 300 --cache 10000 --customers 200000
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from pathlib import Path

import orjson
import sqlalchemy as sa

from bench.harness import descendants, rig, year_of
from churnwatch import store
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import records


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` and its descendants (Linux ``/proc``)."""
    total = 0.0
    for each in (pid, *descendants(pid)):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def _state_bytes(engine: sa.Engine) -> int:
    """Bytes of every customer's stored state: how big the state itself has grown."""
    with engine.connect() as conn:
        query = sa.select(
            sa.func.coalesce(sa.func.sum(sa.func.length(store.customer_state.c.state)), 0)
        )
        return int(conn.execute(query).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="records per second")
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the load")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--cache", type=int, help="customers the worker keeps in memory")
    parser.add_argument(
        "--customers", type=int, help="population size (default: as the events need)"
    )
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    sim = year_of(total, seed=11, customers=args.customers)
    samples = []
    with rig() as r:
        engine = r.engine
        settings = r.settings
        if args.cache is not None:
            settings = dataclasses.replace(settings, cache_customers=args.cache)
        with worker_process(settings, r.broker.bootstrap, r.log) as worker:
            load = threading.Thread(
                target=produce,
                args=(records(sim, limit=total), r.broker.bootstrap),
                kwargs={"rate": args.rate},
                daemon=True,
            )
            started = time.monotonic()
            load.start()
            while load.is_alive() or not samples:
                time.sleep(args.every)
                samples.append(
                    {
                        "s": round(time.monotonic() - started, 1),
                        "rss_mib": round(rss_mib(worker.pid), 1),
                        "customers": store.count_rows(engine, store.customer_state),
                        "events": store.count_rows(engine, store.events),
                        "state_json_mib": round(_state_bytes(engine) / 1024 / 1024, 2),
                    }
                )
    base = samples[len(samples) // 4]
    last = samples[-1]
    added = last["customers"] - base["customers"]
    grown = (last["rss_mib"] - base["rss_mib"]) * 1024 * 1024
    state_grown = last["state_json_mib"] - base["state_json_mib"]
    print(
        orjson.dumps(
            {
                "rate": args.rate,
                "seconds": args.seconds,
                "cache_customers": settings.cache_customers,
                "population": len(sim.customers),
                "samples": samples,
                "rss_growth_mib": round(grown / 1024 / 1024, 1),
                "state_json_growth_mib": round(state_grown, 2),
                "customers_added": added,
                "growth_bytes_per_added_customer": round(grown / added) if added else None,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
