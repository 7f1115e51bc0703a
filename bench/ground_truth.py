"""Evidence on the simulator's ground truth: model vs RFM baseline vs rule.

    python -m bench.ground_truth [--events 150000] [--seed 1]

Prints progress on stderr and one JSON object as its last line (see
:mod:`churnwatch.offline.ground_truth` for what each figure means).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

from churnwatch.offline.ground_truth import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=150_000, help="events per population")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = evaluate(
            events=args.events,
            days=args.days,
            seed=args.seed,
            workdir=Path(tmp),
            on_step=lambda step: print(f"… {step}", file=sys.stderr, flush=True),
        )
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
