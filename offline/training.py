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
from churnwatch.models.candidates import refusal
from churnwatch.models.dataset import cutoffs, population_rows, snapshots, warm_up_for
from churnwatch.models.training import TrainingError, train


class PromotionRefused(TrainingError):
    """The trained candidate ranks worse than a baseline: saved and listed, not promoted."""


def train_from_store(
    engine: Engine,
    models_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    horizon_days: float = 90.0,
    every_days: int = 7,
    seed: int = 0,
    candidate: str | None = None,
    promote: bool = False,
    force: bool = False,
    on_step: Callable[[str], None] = lambda _: None,
) -> tuple[registry.ModelCard, Path]:
    """Train on the stored events in ``[since, until]``; save, list and maybe promote.

    Saves ``candidate``, or the champion. A promotion of a candidate that ranks
    worse than the best other baseline beyond its interval raises
    :class:`PromotionRefused` after the model is saved and listed, unless ``force``.
    """
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
    on_step(f"training and judging every candidate on {len(snaps):,} snapshots")
    population = population_rows(events, at[-1]) if at else None
    trained = train(
        snaps, horizon_days=horizon_days, seed=seed, population=population, candidate=candidate
    )
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
    refused = refusal(card.candidate, card.evidence) if promote and not force else None
    with engine.begin() as conn:
        listed = orjson.loads(card.to_json())
        store.register_model(
            conn, card.version, str(folder.resolve()), listed, registry.digest(folder)
        )
        if promote and refused is None:
            store.promote_model(conn, card.version)
    if refused is not None:
        raise PromotionRefused(f"{card.version} saved but not promoted: {refused}")
    return card, folder
