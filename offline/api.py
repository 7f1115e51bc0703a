"""The offline tools as a Python API for notebooks: pandas DataFrames in and out.

The ``churnwatch import`` and ``churnwatch replay`` commands are shells over these
functions::

    from churnwatch.offline import api

    engine = api.open_store("sqlite:///churnwatch-data/churnwatch.db")
    api.import_events(engine, "purchases.csv", default_type="purchase",
                      columns={"customer_id": "CustomerID", "ts": "InvoiceDate", "amount": "Sales"})
    rows = api.rows_as_of(engine, "2026-06-30")          # one row per customer
    findings = api.backtest(engine, since="2026-01-01", capacity_per_day=50)
    api.sweep_frame(findings)                            # the threshold trade-off curve
    api.metrics_frame(findings)                          # current against recommended

Times are ``datetime`` objects or ISO 8601 strings (naive ones are UTC). The scorer
defaults to the promoted model, else the rule, as in the worker, from whatever folder
the notebook runs in (:func:`default_scorer`); a promoted model that cannot be loaded
raises. The policy and the playbook default to the packaged ones.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
from sqlalchemy.engine import Engine

from churnwatch import store
from churnwatch.alerts.config import (
    DEFAULT_PLAYBOOK,
    DEFAULT_POLICY,
    Playbook,
    Policy,
    load_playbook,
    load_policy,
)
from churnwatch.alerts.economics import (
    DEFAULT_MIN_EVIDENCE,
    DEFAULT_PRECISION_FLOOR,
    DEFAULT_WINBACK_PRIOR,
    check,
)
from churnwatch.engine.model_source import ModelSource
from churnwatch.events import from_payload
from churnwatch.models.scoring import Scorer
from churnwatch.offline import parallel
from churnwatch.offline.importing import DEFAULT_FAR_MARGIN, RowMapping, Summary, import_file
from churnwatch.offline.replay import COLUMNS, Replayed
from churnwatch.offline.replay import rows_as_of as _rows_as_of
from churnwatch.offline.report import Findings, analyse
from churnwatch.settings import Settings
from churnwatch.winback.report import fetch, measured_rates, settled_cases

#: how far ahead of now an imported event may lie, as in the worker's default
DEFAULT_MAX_FUTURE_S = 3600.0

Moment = datetime | str


def _moment(value: Moment) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def open_store(url: str) -> Engine:
    """The store at ``url`` (a SQLAlchemy URL), migrated to the newest schema."""
    engine = store.make_engine(url)
    store.upgrade(engine)
    return engine


def import_events(
    engine: Engine,
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    constants: Mapping[str, str] | None = None,
    topic: str | None = None,
    default_type: str | None = None,
    date_format: str | None = None,
    negative_as_refund: bool = False,
    rejects: BinaryIO | None = None,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
    far_margin: float = DEFAULT_FAR_MARGIN,
    strict: bool = False,
    on_row: Callable[[int], None] | None = None,
) -> Summary:
    """Load a CSV, JSONL or Parquet file of historic events in one transaction.

    ``columns`` maps event fields to the file's columns, ``constants`` sets fields
    on every row. Rejected rows and their reasons go to ``rejects`` (JSONL), if
    given; re-importing a file adds nothing. Rows more than ``far_margin`` times
    the length of the file's dense history outside it are stored and counted in
    ``Summary.far_out``; with ``strict`` they are rejected.
    """
    mapping = RowMapping(
        columns=dict(columns or {}),
        constants=dict(constants or {}),
        topic=topic,
        default_type=default_type,
        date_format=date_format,
        negative_as_refund=negative_as_refund,
    )
    return import_file(
        engine,
        Path(path),
        mapping,
        rejects=rejects if rejects is not None else io.BytesIO(),
        now=store.utcnow(),
        max_future_s=max_future_s,
        far_margin=far_margin,
        strict=strict,
        on_row=on_row,
    )


def default_scorer(
    engine: Engine, model: str | Path | None = None, *, models_dir: str | Path | None = None
) -> Scorer:
    """The scorer of the ``model`` folder, else the promoted model, else the rule.

    Models load only from ``models_dir``: by default ``CHURNWATCH_MODELS_DIR`` when
    it is set, else the folder the store registered the promoted model in, never
    the current folder. Each is checked against the digest recorded at training.
    A promoted model that cannot be loaded raises
    (:class:`~churnwatch.models.registry.ModelIntegrityError`, or the loader's
    error) rather than scoring with the rule.
    """
    if models_dir is None and "CHURNWATCH_MODELS_DIR" in os.environ:
        models_dir = Settings.from_env().models_dir
    if models_dir is None:
        with engine.connect() as conn:
            current = store.current_model_entry(conn)
        # train registers the artifact's absolute folder, inside the models folder
        models_dir = Path(current[1]).parent if current is not None else Path.cwd()
    pinned = None if model is None else Path(model)
    return ModelSource(engine, models_dir=Path(models_dir), pinned=pinned, strict=True)()


def records_as_of(
    engine: Engine,
    when: Moment,
    *,
    scorer: Scorer | None = None,
    policy: Policy | None = None,
    partitions: int = 1,
) -> list[dict[str, Any]]:
    """Every customer's row as of ``when``, as plain dicts (``None`` for missing values)."""
    at = _moment(when)
    with engine.connect() as conn:
        events = (from_payload(p) for p in store.read_events(conn, until=at))
        return _rows_as_of(
            events,
            at.timestamp(),
            scorer or default_scorer(engine),
            policy or load_policy(DEFAULT_POLICY),
            partitions=partitions,
        )


def rows_as_of(
    engine: Engine,
    when: Moment,
    *,
    scorer: Scorer | None = None,
    policy: Policy | None = None,
    partitions: int = 1,
) -> pd.DataFrame:
    """Every customer's row as of ``when`` (docs/contract.md's columns; missing values: NaN)."""
    records = records_as_of(engine, when, scorer=scorer, policy=policy, partitions=partitions)
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def replay(
    engine: Engine,
    *,
    until: Moment | None = None,
    scorer: Scorer | None = None,
    policy: Policy | None = None,
    playbook: Playbook | None = None,
    partitions: int = 1,
    on_event: Callable[[int], None] | None = None,
    workers: int | None = None,
    dask: str | None = None,
) -> Replayed:
    """The stored history through the worker's own lanes, up to ``until``.

    The lanes (one per of the ``partitions``) run side by side in ``workers``
    processes (default: the cores; at most one per lane), or with ``dask``, the
    address of a Dask scheduler, as tasks on that cluster (default: one per
    thread it runs). The cluster's workers open the store from its URL, so they
    must reach it. The result, in :func:`~churnwatch.offline.parallel.combine`'s
    order, is the same however the lanes are split.
    """
    end = None if until is None else _moment(until).timestamp()
    url = engine.url
    shared = url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")
    if workers is None:
        workers = (
            parallel.dask_threads(dask) if dask else parallel.default_workers() if shared else 1
        )
    jobs = parallel.lane_jobs(
        url.render_as_string(hide_password=False),
        workers,
        partitions=partitions,
        scorer=scorer or default_scorer(engine),
        policy=policy or load_policy(DEFAULT_POLICY),
        playbook=playbook or load_playbook(DEFAULT_PLAYBOOK),
        until=end,
    )
    if not shared and (dask or len(jobs) > 1):
        raise parallel.ReplayError("an in-memory SQLite store cannot be shared with other workers")
    if dask:
        return parallel.replay_on_dask(jobs, dask, on_event)
    return parallel.replay_in_processes(jobs, on_event, engine=engine)


def backtest(
    engine: Engine,
    *,
    since: Moment | None = None,
    until: Moment | None = None,
    capacity_per_day: float = 50.0,
    horizon_days: float = 90.0,
    scorer: Scorer | None = None,
    policy: Policy | None = None,
    playbook: Playbook | None = None,
    partitions: int = 1,
    on_event: Callable[[int], None] | None = None,
    workers: int | None = None,
    dask: str | None = None,
    contact_cost: float = 0.0,
    precision_floor: float = DEFAULT_PRECISION_FLOOR,
    winback_prior: float = DEFAULT_WINBACK_PRIOR,
    min_evidence: int = DEFAULT_MIN_EVIDENCE,
    currency: str | None = None,
) -> Findings:
    """Replay, then sweep the thresholds and recommend ones within ``capacity_per_day``.

    Alerts are judged from ``since`` (default: the first event) to ``until``
    (default: the last), within the bulk of the history (stray records far from
    the rest are left out); a customer churned who bought nothing for
    ``horizon_days`` after an alert. The recommendation maximises the expected
    net value saved (``winback_prior`` until outcomes are measured, less
    ``contact_cost`` per alert) above ``precision_floor``, for each tier and all
    together, trusting only thresholds judged on ``min_evidence`` alerts or more.
    Money is in ``currency`` (default: the one the purchases carry). ``workers``
    and ``dask`` split the replay as in :func:`replay`. A setting out of its
    range raises :class:`~churnwatch.alerts.economics.SettingError` before the
    replay starts.
    """
    check(
        winback_rate=winback_prior,
        contact_cost=contact_cost,
        precision_floor=precision_floor,
        min_evidence=min_evidence,
    )
    scorer = scorer or default_scorer(engine)
    policy = policy or load_policy(DEFAULT_POLICY)
    replayed = replay(
        engine,
        until=until,
        scorer=scorer,
        policy=policy,
        playbook=playbook,
        partitions=partitions,
        on_event=on_event,
        workers=workers,
        dask=dask,
    )
    start = _moment(since).timestamp() if since is not None else replayed.first_s
    end = _moment(until).timestamp() if until is not None else replayed.last_s
    if start is None or end is None:
        raise ValueError("the event store holds no events to replay")
    report = fetch(engine)
    with engine.connect() as conn:
        cases = settled_cases(conn)
    return analyse(
        replayed,
        policy,
        start=start,
        end=end,
        horizon_days=horizon_days,
        capacity_per_day=capacity_per_day,
        scorer=scorer.version,
        winback=report["winback_effectiveness"],
        measured=measured_rates(cases, winback_prior),
        uplift=report["uplift_by_tier"],
        contact_cost=contact_cost,
        precision_floor=precision_floor,
        winback_prior=winback_prior,
        min_evidence=min_evidence,
        currency=currency,
    )


def sweep_frame(findings: Findings) -> pd.DataFrame:
    """The trade-off curve: per tier and watch threshold, what the alerts would achieve."""
    rows: list[dict[str, Any]] = [
        {"tier": tier, "watch": watch, **metrics.to_dict()}
        for tier, points in findings.sweep.items()
        for watch, metrics in points
    ]
    return pd.DataFrame.from_records(rows)


def metrics_frame(findings: Findings) -> pd.DataFrame:
    """Current against recommended thresholds, per tier and for all (``"all"``)."""
    rows = [
        {"policy": name, "tier": tier, **metrics.to_dict()}
        for name, by_tier in (
            ("current", findings.current_metrics),
            ("recommended", findings.recommended_metrics),
        )
        for tier, metrics in by_tier.items()
    ]
    return pd.DataFrame.from_records(rows)
