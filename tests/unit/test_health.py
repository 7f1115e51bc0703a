"""``/health``'s logic: a worker is healthy while it makes progress, not merely while it answers."""

from __future__ import annotations

from churnwatch.streams.health import FAILED_STEPS_UNHEALTHY, Health

STALL_S = 3.0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _health() -> tuple[Health, _Clock]:
    clock = _Clock()
    health = Health(stall_s=STALL_S, clock=clock)
    health.agent_running = True
    return health, clock


def test_a_running_idle_agent_is_healthy_a_dead_one_is_not() -> None:
    health, _ = _health()
    assert health.report()[0] == 200
    health.agent_running = False
    status, body = health.report()
    assert status == 503 and body["problems"] == ["the intake agent is not running"]


def test_failed_store_steps_in_a_row() -> None:
    health, _ = _health()
    for _ in range(FAILED_STEPS_UNHEALTHY - 1):
        health.failed()
    assert health.report()[0] == 200
    health.failed()
    status, body = health.report()
    assert status == 503 and body["failed_steps_in_row"] == FAILED_STEPS_UNHEALTHY
    health.committed(held=0)
    assert health.report()[0] == 200


def test_records_waiting_with_no_commit() -> None:
    health, clock = _health()
    health.consumed(held=5)
    clock.now += STALL_S
    assert health.report()[0] == 200
    clock.now += 0.5
    status, body = health.report()
    assert status == 503 and body["problems"] == ["5 records waited 4 s with no commit"]
    # a commit is progress, even with records still waiting
    health.committed(held=2)
    assert health.report()[0] == 200
    clock.now += STALL_S + 1
    assert health.report()[0] == 503
    health.committed(held=0)
    clock.now += 100
    assert health.report()[0] == 200


def test_lag_waits_from_when_it_is_first_seen() -> None:
    health, clock = _health()
    clock.now += 100  # idle for long: no records waited meanwhile
    health.lag[("purchases", 0)] = 7
    assert health.report()[0] == 200
    clock.now += STALL_S + 1
    status, body = health.report()
    assert status == 503 and body["lag"] == 7
    health.lag[("purchases", 0)] = 0
    assert health.report()[0] == 200
