"""Win-back uplift on simulated holdout experiments, graded against the true effects.

    python -m bench.winback [--cases 20000] [--seed 1] [--control-share 0.1]
                            [--min-customers 30]

Draws alerted cases (reason uniformly, tier by ``TIER_MIX`` of
:mod:`churnwatch.sim.winback_truth`), assigns each with
:func:`churnwatch.winback.holdout.assign` over the playbook's action and the
reason's alternatives, settles it from the truth table, then estimates the
uplift per (reason, action) and recommends an action per reason
(:mod:`churnwatch.winback.uplift`). Prints one JSON object as its last line:

- ``coverage``: share of the (reason, action) cells whose 95 % interval holds the
  true uplift (the mean over the cell's own cases, so over the tiers it was given in);
- ``best_action_agreement``: share of reasons whose recommended action is truly
  the best, the largest true uplift less cost per contact;
- ``cells``: each cell's estimate, interval, true uplift and group sizes;
- ``recommended`` and ``best`` per reason, and ``regret``: what the recommended
  action truly brings per contact less than the best (0 when they agree);
- the settings.

A run's coverage is over 17 cells, so one or two misses move it by 6 % each: with
``--repeats N`` the same experiment is also run for the seeds after ``--seed`` and
``repeats`` gives the coverage over all their cells, the mean agreement, and the
share of runs that meet the goals (coverage at least 0.9, agreement at least 0.75).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from typing import Any

import orjson

from churnwatch.models.reasons import REASONS
from churnwatch.sim import winback_truth as truth
from churnwatch.winback.holdout import HOLDOUT, assign
from churnwatch.winback.uplift import Case, estimate, recommend

#: share of treated cases the CRM reports it reached (recorded; intention to treat ignores it)
CONTACTED = 0.8


def simulate(cases: int, seed: int, control_share: float, salt: str) -> list[Case]:
    """``cases`` settled cases, the same for the same arguments."""
    rng = random.Random(seed)
    tiers, weights = list(truth.TIER_MIX), list(truth.TIER_MIX.values())
    out = []
    for i in range(cases):
        reason = rng.choice(REASONS)
        tier = rng.choices(tiers, weights)[0]
        action = assign(f"customer-{i}", f"case-{i}", salt, control_share, truth.arms(reason, tier))
        returned = truth.returns((reason, tier, action), rng.random())
        contacted = action != HOLDOUT and rng.random() < CONTACTED
        out.append(Case(reason, tier, action, returned, contacted, None))
    return out


def evaluate(cases: int, seed: int, control_share: float, min_customers: int) -> dict[str, Any]:
    """Simulate, estimate, recommend, and grade against the truth."""
    salt = f"bench-winback-{seed}"
    settled = simulate(cases, seed, control_share, salt)
    cells = estimate(settled, by=("reason", "action"), min_customers=min_customers)
    costs = truth.cost()
    recommended = recommend(cells, cost=costs, value=1.0)

    # the true uplift of a cell: its cases' true uplifts, averaged (their tier mix)
    true_sum: dict[tuple[str, str], float] = defaultdict(float)
    for case in settled:
        if case.action != HOLDOUT:
            true_sum[case.reason, case.action] += truth.uplift(case.reason, case.tier, case.action)
    rows = []
    covered = judged = 0
    best: dict[str, tuple[float, str]] = {}
    nets: dict[tuple[str, str], float] = {}
    for cell in cells:
        reason, action = cell.key
        true = true_sum[reason, action] / cell.treated.n
        net = nets[reason, action] = true - costs[action]
        if reason not in best or net > best[reason][0]:
            best[reason] = (net, action)
        if cell.low is not None and cell.high is not None:
            judged += 1
            covered += cell.low <= true <= cell.high
        rows.append(
            {
                "reason": reason,
                "action": action,
                "estimated": _round(cell.uplift),
                "low": _round(cell.low),
                "high": _round(cell.high),
                "true": round(true, 4),
                "n_treated": cell.treated.n,
                "n_control": cell.control.n,
                "enough": cell.enough,
            }
        )
    agree = sum(recommended.get((r,), ("",))[0] == best[r][1] for r in best)
    regret = {
        key[0]: round(best[key[0]][0] - nets[key[0], action], 4)
        for key, (action, _) in recommended.items()
    }
    return {
        "coverage": round(covered / judged, 4) if judged else None,
        "best_action_agreement": round(agree / len(best), 4) if best else None,
        "recommended": {key[0]: action for key, (action, _) in recommended.items()},
        "best": {reason: action for reason, (_, action) in sorted(best.items())},
        "regret": regret,
        "cells": rows,
        "settings": {
            "cases": cases,
            "seed": seed,
            "control_share": control_share,
            "min_customers": min_customers,
            "salt": salt,
            "value": 1.0,
        },
    }


def repeated(
    runs: int, cases: int, seed: int, control_share: float, min_customers: int
) -> dict[str, Any]:
    """Coverage over the cells of ``runs`` experiments (seeds ``seed``, ``seed + 1``, ...),
    mean agreement, and the share of runs meeting the goals."""
    results = [evaluate(cases, seed + k, control_share, min_customers) for k in range(runs)]
    judged = [c for r in results for c in r["cells"] if c["low"] is not None]
    covered = sum(c["low"] <= c["true"] <= c["high"] for c in judged)
    agreement = [r["best_action_agreement"] or 0.0 for r in results]
    good = [
        (r["coverage"] or 0.0) >= 0.9 and (r["best_action_agreement"] or 0.0) >= 0.75
        for r in results
    ]
    return {
        "runs": runs,
        "seeds": [seed, seed + runs - 1],
        "coverage": round(covered / len(judged), 4) if judged else None,
        "best_action_agreement": round(sum(agreement) / runs, 4),
        "runs_meeting_goals": round(sum(good) / runs, 4),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000, help="alerted cases to simulate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--control-share", type=float, default=0.1)
    parser.add_argument("--min-customers", type=int, default=30)
    parser.add_argument(
        "--repeats", type=int, default=1, help="also run the seeds after --seed, and pool them"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    result = evaluate(args.cases, args.seed, args.control_share, args.min_customers)
    if args.repeats > 1:
        result["repeats"] = repeated(
            args.repeats, args.cases, args.seed, args.control_share, args.min_customers
        )
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
