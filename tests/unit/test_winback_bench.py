"""bench.winback: deterministic, and its figures for seed 1 pinned."""

from __future__ import annotations

from bench.winback import evaluate, repeated


def test_the_same_seed_gives_the_same_figures() -> None:
    first = evaluate(cases=20_000, seed=1, control_share=0.1, min_customers=30)
    assert first == evaluate(cases=20_000, seed=1, control_share=0.1, min_customers=30)
    assert len(first["cells"]) == 17  # 4 reasons x 3 playbook actions, and 5 alternatives
    # one cell of 17 misses its true uplift (communication's SMS outreach, by chance)
    assert first["coverage"] == 0.9412
    assert first["best_action_agreement"] == 0.75
    assert first["regret"] == {
        "communication": 0.061,
        "competitor": 0.0,
        "needs_changed": 0.0,
        "service_quality": 0.0,
    }


def test_no_holdout_measures_nothing() -> None:
    result = evaluate(cases=2_000, seed=1, control_share=0.0, min_customers=30)
    assert result["coverage"] is None
    assert result["recommended"] == {}
    assert all(cell["n_control"] == 0 and cell["low"] is None for cell in result["cells"])


def test_repeats_pool_the_cells_of_several_seeds() -> None:
    pooled = repeated(runs=10, cases=20_000, seed=1, control_share=0.1, min_customers=30)
    # 156 of 170 cells (0.949 over seeds 1 to 100: the run-to-run spread is wide)
    assert pooled == {
        "runs": 10,
        "seeds": [1, 10],
        "coverage": 0.9176,
        "best_action_agreement": 0.825,
        "runs_meeting_goals": 0.6,
    }
