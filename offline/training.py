"""``churnwatch train``: store history → snapshots → model → registry.

Without ``--from``/``--to`` the model learns from the dense part of the stored
history (:func:`~churnwatch.models.dataset.dense_window`); a bound that is given
wins. The window, and why, is on the model card. A history that cannot train
says why, what it found, and which options to try.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from churnwatch import store
from churnwatch.events import from_payload
from churnwatch.features.state import DAY_S
from churnwatch.models import registry
from churnwatch.models.candidates import refusal
from churnwatch.models.contractual import recognise
from churnwatch.models.dataset import (
    MIN_WARM_UP_DAYS,
    Snapshot,
    cutoffs,
    dense_window,
    population_rows,
    snapshots,
    warm_up_for,
)
from churnwatch.models.training import TrainingError, raw_frame, train
from churnwatch.store import Engine

#: cutoffs a suggested ``--horizon-days`` leaves room for
_SUGGESTED_CUTOFFS = 4


def check_options(
    since: datetime | None, until: datetime | None, horizon_days: float, every_days: int
) -> None:
    """Refuse options that cannot train anything, with what to give instead."""
    if since is not None and until is not None and since >= until:
        raise TrainingError(
            f"--from {since.isoformat()} is not before --to {until.isoformat()}: "
            "give a --from earlier than the --to"
        )
    if not (horizon_days > 0 and math.isfinite(horizon_days)):
        raise TrainingError(
            f"--horizon-days must be more than 0 (got {horizon_days:g}): the days after a "
            "cutoff in which a purchase means the customer stayed, e.g. 90"
        )
    if every_days < 1:
        raise TrainingError(f"--every-days must be 1 at least (got {every_days})")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def choose_window(
    times_s: Sequence[float], since: datetime | None, until: datetime | None
) -> tuple[float, float, str]:
    """The first and last event time to learn from, and how they were chosen, in words.

    ``times_s`` are the event times in ``[since, until]``, in order. A bound that
    is given wins; one that is not is where the history is dense.
    """
    if since is not None and until is not None:
        return times_s[0], times_s[-1], "--from and --to as given"
    start, end = dense_window(times_s)
    start = times_s[0] if since is not None else start
    end = times_s[-1] if until is not None else end
    before = int(np.searchsorted(times_s, start, side="left"))
    after = len(times_s) - int(np.searchsorted(times_s, end, side="right"))
    given = "--from as given, " if since else "--to as given, " if until else ""
    if not before and not after:
        return start, end, f"{given}every stored event: the history is dense throughout"
    return (
        start,
        end,
        f"{given}where the stored history is dense: {before:,} earlier and {after:,} later of "
        f"{len(times_s):,} events left out (the stored ones span {_day(times_s[0])} to "
        f"{_day(times_s[-1])})",
    )


def _stored_dense_window(engine: Engine) -> tuple[float, float] | None:
    """The dense part of every stored event's time, for advice when given bounds fail."""
    with engine.connect() as conn:
        times = [
            (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
            for ts in store.event_times(conn)
        ]
    return dense_window(times) if times else None


def advice(
    start_s: float,
    end_s: float,
    at: Sequence[float],
    snaps: Sequence[Snapshot],
    *,
    horizon_days: float,
    every_days: int,
    warm_up_days: float,
    dense: tuple[float, float] | None = None,
) -> str:
    """What the window held, and options to try, after ``train`` refused it.

    ``dense`` is the dense part of the whole stored history, suggested when the
    given ``--from``/``--to`` leave part of it out.
    """
    span = (end_s - start_s) / DAY_S
    found = (
        f"the window {_day(start_s)} to {_day(end_s)} holds {span:.0f} days: {len(at)} "
        f"cutoff(s) every {every_days} day(s) after a {warm_up_days:.0f}-day warm-up, "
        f"{len(snaps):,} snapshots"
    )
    churned = sum(s.churned for s in snaps) / len(snaps) if snaps else None
    if churned is not None:
        found += f" ({churned:.0%} churned)"
    tries = []
    if len({s.cutoff_s for s in snaps}) < 2:
        # the longest horizon that leaves room for a few cutoffs after the shortest warm-up
        fits = math.floor(span - MIN_WARM_UP_DAYS - (_SUGGESTED_CUTOFFS - 1) * every_days)
        if 7 <= fits < horizon_days:
            tries.append(f"--horizon-days {fits}")
        if every_days > 1:
            tries.append("--every-days 1")
    elif churned is not None and churned >= 0.5:
        # most stopped buying within the horizon: a longer one sees their next purchase
        tries.append(f"--horizon-days {horizon_days * 2:g}")
    else:
        tries.append(f"--horizon-days {horizon_days / 2:g}")
    if dense is not None and (dense[0] < start_s - DAY_S or dense[1] > end_s + DAY_S):
        # dates: --from is the midnight before the first event, --to the one after the last
        since, until = (datetime.fromtimestamp(t, tz=UTC).date() for t in dense)
        tries.append(
            f"--from {since} --to {until + timedelta(days=1)} (where the stored history is dense)"
        )
    if not tries:
        return f"{found}; import a longer history"
    return f"{found}; try {' or '.join(tries)}"


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
    A bound not given is where the history is dense (:func:`choose_window`).
    """
    check_options(since, until, horizon_days, every_days)
    on_step("reading events")
    with engine.connect() as conn:
        events = [from_payload(p) for p in store.read_events(conn, since=since, until=until)]
    if not events:
        raise TrainingError("no stored events in the requested window: import or stream some first")
    first, last, why = choose_window([e.epoch_s for e in events], since, until)
    events = [e for e in events if first <= e.epoch_s <= last]
    window = f"{_day(first)} to {_day(last)}, {why}"
    warm_up = warm_up_for(first, last, horizon_days)
    at = cutoffs(
        first, last, every_days=every_days, horizon_days=horizon_days, warm_up_days=warm_up
    )
    # the kind of history decides who is active at a cutoff, so it comes first
    population = population_rows(events, at[-1]) if at else None
    history = recognise(raw_frame(population)) if population else None
    on_step(
        f"building snapshots at {len(at)} cutoffs (warm-up {warm_up:.0f} days) "
        f"from {len(events):,} events"
    )
    snaps = list(snapshots(events, at, horizon_days=horizon_days, history=history))
    on_step(f"training and judging every candidate on {len(snaps):,} snapshots")
    try:
        trained = train(
            snaps,
            horizon_days=horizon_days,
            seed=seed,
            population=population,
            candidate=candidate,
            history=history,
        )
    except TrainingError as exc:
        dense = _stored_dense_window(engine) if since or until else None
        hint = advice(
            first,
            last,
            at,
            snaps,
            horizon_days=horizon_days,
            every_days=every_days,
            warm_up_days=warm_up,
            dense=dense,
        )
        raise TrainingError(f"{exc}; {hint}") from None
    card = registry.make_card(
        trained,
        horizon_days=horizon_days,
        trained_from=since or events[0].ts,
        trained_to=until or events[-1].ts,
        seed=seed,
        now=store.utcnow(),
        warm_up_days=warm_up,
        window=window,
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
