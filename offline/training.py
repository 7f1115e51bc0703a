"""``churnwatch train``: store history → snapshots → model → registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.models import registry
from churnwatch.models.dataset import cutoffs, population_rows, snapshots, warm_up_for
from churnwatch.models.training import TrainingError, train


def train_from_store(
    engine: Engine,
    models_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    horizon_days: float = 90.0,
    every_days: int = 7,
    seed: int = 0,
    promote: bool = False,
    on_step: Callable[[str], None] = lambda _: None,
) -> tuple[registry.ModelCard, Path]:
    """Train on the stored events in ``[since, until]``; save, list and maybe promote."""
    on_step("reading events")
    with engine.connect() as conn:
        events = [from_payload(p) for p in store.read_events(conn, since=since, until=until)]
    if not events:
        raise TrainingError("no stored events in the requested window: import or stream some first")
    first, last = events[0].epoch_s, events[-1].epoch_s
    warm_up = warm_up_for(first, last, horizon_days)
    at = cutoffs(
        first, last, every_days=every_days, horizon_days=horizon_days, warm_up_days=warm_up
    )
    on_step(
        f"building snapshots at {len(at)} cutoffs (warm-up {warm_up:.0f} days) "
        f"from {len(events):,} events"
    )
    snaps = list(snapshots(events, at, horizon_days=horizon_days))
    on_step(f"training on {len(snaps):,} snapshots")
    population = population_rows(events, at[-1]) if at else None
    trained = train(snaps, horizon_days=horizon_days, seed=seed, population=population)
    card = registry.make_card(
        trained,
        horizon_days=horizon_days,
        trained_from=since or events[0].ts,
        trained_to=until or events[-1].ts,
        seed=seed,
        now=store.utcnow(),
        warm_up_days=warm_up,
    )
    folder = registry.save(models_dir, trained, card)
    with engine.begin() as conn:
        listed = orjson.loads(card.to_json())
        store.register_model(
            conn, card.version, str(folder.resolve()), listed, registry.digest(folder)
        )
        if promote:
            store.promote_model(conn, card.version)
    return card, folder
