"""The worker's app as :class:`~churnwatch.streams.app.Worker` builds it: what runs on it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from churnwatch.events import INPUT_TOPICS
from churnwatch.settings import Settings
from churnwatch.streams.app import Worker, create_app
from churnwatch.topics import REKEYED, WINBACK_OUTCOMES


def _worker(**settings: Any) -> Worker:
    chosen = replace(Settings(web_port=0), **settings)
    return Worker(chosen, "127.0.0.1:1", sa.create_engine("sqlite://"))


def test_the_app_runs_the_two_agents_on_their_topics() -> None:
    app = _worker().app
    topics = {name: set(agent.channel.topics) for name, agent in app.agents.items()}
    assert topics == {"outcomes": {WINBACK_OUTCOMES}, "intake": {*INPUT_TOPICS, REKEYED}}


def test_the_app_runs_the_three_timers_and_reloads_state_on_assignment() -> None:
    worker = _worker()
    app = worker.app
    # mark delivered, resend unsent, release quiet partitions
    assert len(app._app_tasks) == 3
    assert worker.load_state_from_store in list(app.on_partitions_assigned.iter_receivers(app))


def test_the_app_lets_go_of_the_workers_held_records() -> None:
    worker = _worker()
    assert worker.app.merge is worker.merge and worker.app.acks is worker.acks
    # the app stops the fold process (not yet started here) with itself
    assert worker.app.fold_process is worker.committer


def test_a_fold_in_a_thread_leaves_the_app_nothing_to_stop() -> None:
    assert _worker(fold_process=False).app.fold_process is None


def test_create_app_returns_a_workers_app() -> None:
    app = create_app(Settings(web_port=0), "127.0.0.1:1", sa.create_engine("sqlite://"))
    assert sorted(app.agents) == ["intake", "outcomes"]
