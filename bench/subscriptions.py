"""Evidence on a simulated subscription business: held-out figures and ROC AUC on truth.

    python -m bench.subscriptions [--customers 3000] [--days 540] [--seed 1]

Prints progress on stderr and one JSON object as its last line (see
:mod:`churnwatch.offline.subscription_truth` for what each figure means).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import orjson

from churnwatch.offline.subscription_truth import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--end", default="2026-11-30", help="the history's last day (ISO)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = evaluate(
        customers=args.customers,
        days=args.days,
        end=datetime.fromisoformat(args.end).replace(tzinfo=UTC),
        seed=args.seed,
        on_step=lambda step: print(f"… {step}", file=sys.stderr, flush=True),
    )
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
