"""The ``churnwatch`` command line (Typer)."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from churnwatch.settings import DEFAULT_DATA_DIR, Settings

app = typer.Typer(
    help="churnwatch: event-sourced churn early warning on Kafka streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 to listen on.")] = 9092,
) -> None:
    """Run the embedded Kafka-compatible broker (tansu, memory only) in the foreground."""
    from churnwatch.broker import BrokerError, EmbeddedBroker

    embedded = EmbeddedBroker(port=port)
    try:
        embedded.start()
    except BrokerError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    typer.echo(f"broker ready on {embedded.bootstrap} (memory only; Ctrl-C stops it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        embedded.wait()
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()


@app.command()
def worker(
    log_level: Annotated[str, typer.Option(help="Faust log level.")] = "warning",
) -> None:
    """Run the stream worker against CHURNWATCH_BROKER (embedded broker when unset)."""
    from churnwatch.streams.worker import run_worker

    _policy(), _playbook()  # a bad file stops here, before any broker or store is touched
    run_worker(_settings(), log_level=log_level)


@app.command()
def simulate(
    events: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
    days: Annotated[int, typer.Option(help="Days of history, ending now.")] = 365,
    customers: Annotated[
        int | None, typer.Option(help="Population size (default: sized for --events).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed, the same events.")] = 7,
    bad_share: Annotated[float, typer.Option(help="Share of bad records mixed in.")] = 0.01,
    churn_share: Annotated[float, typer.Option(help="Share of customers who churn.")] = 0.3,
    out: Annotated[
        Path | None, typer.Option(help="Write JSONL here instead of producing to the broker.")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Ground-truth JSONL (default: beside --out or data dir).")
    ] = None,
    rate: Annotated[float | None, typer.Option(help="Records per second (broker only).")] = None,
) -> None:
    """Produce a seeded synthetic population's events to the broker or to a file."""
    from churnwatch.producing import produce, write_jsonl
    from churnwatch.simulator import Simulation, customers_for, records, truth_rows

    if not 0 <= bad_share < 1 or not 0 <= churn_share <= 1:
        raise typer.BadParameter("--bad-share must be in [0, 1) and --churn-share in [0, 1]")
    now = datetime.now(UTC).replace(microsecond=0)
    population = customers or customers_for(events or 100_000, days)
    sim = Simulation(
        population, now - timedelta(days=days), now, seed=seed, churn_share=churn_share
    )
    stream = records(sim, bad_share=bad_share, limit=events)
    if out is not None:
        counts = write_jsonl(stream, out)
        where = str(out)
        truth = truth or out.with_suffix(".truth.jsonl")
    else:
        from churnwatch.topics import ensure_topics_for

        settings = _settings()
        if settings.broker is None:
            raise typer.BadParameter("set CHURNWATCH_BROKER, or write to a file with --out")
        ensure_topics_for(settings, settings.broker)
        client = settings.kafka_security.client_config()
        counts = produce(stream, settings.broker, rate=rate, client=client)
        where = settings.broker
        truth = truth or DEFAULT_DATA_DIR / f"truth-seed{seed}.jsonl"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in truth_rows(sim)))
    bad = counts.total() - counts["valid"]
    typer.echo(
        f"{counts.total()} records ({counts['valid']} valid, {bad} bad) to {where}; "
        f"{population} customers; ground truth in {truth}"
    )


@app.command()
def demo(
    events: Annotated[
        int | None, typer.Option(help="End after this many events and print a summary.")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on the last line.")
    ] = False,
    days: Annotated[int, typer.Option(help="Days of simulated history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 7,
    bad_share: Annotated[float, typer.Option(help="Share of bad records mixed in.")] = 0.01,
    rate: Annotated[
        float | None, typer.Option(help="Records per second (default: 500 without --events).")
    ] = None,
) -> None:
    """Run broker, worker and simulator together on embedded defaults."""
    from churnwatch.demo import DemoError, run_demo

    settings = _settings()
    if events is None and rate is None:
        rate = 500.0
    progress = None if json_out else _progress(events)
    if settings.web_port:
        typer.echo(f"live alerts page: http://127.0.0.1:{settings.web_port}/alerts", err=True)
    try:
        summary = run_demo(
            settings,
            events=events,
            days=days,
            seed=seed,
            bad_share=bad_share,
            rate=rate,
            on_record=progress,
        )
    except DemoError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("\nstopped")
        return
    if json_out:
        typer.echo(orjson.dumps(summary.to_dict()).decode())
    else:
        for key, value in summary.to_dict().items():
            typer.echo(f"{key:>14}: {value}")


def _date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date, e.g. 2026-06-30") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _policy() -> Any:
    """The alert policy of the settings; exit 2 with the reasons if it is invalid."""
    from churnwatch.alerts.config import DEFAULT_POLICY, load_policy

    return _config("alert policy", load_policy, _settings().policy_file or DEFAULT_POLICY)


def _playbook() -> Any:
    """The win-back playbook of the settings; exit 2 with the reasons if it is invalid."""
    from churnwatch.alerts.config import DEFAULT_PLAYBOOK, load_playbook

    return _config("playbook", load_playbook, _settings().playbook_file or DEFAULT_PLAYBOOK)


def _config(what: str, load: Any, path: Path) -> Any:
    from churnwatch.alerts.config import ConfigError

    try:
        return load(path)
    except ConfigError as exc:
        print(f"cannot use the {what}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


def _scorer(engine: Any, model: Path | None) -> Any:
    """The scorer of ``model``, else the promoted model, else the rule; exit 2 if unloadable."""
    from churnwatch.model_source import ModelSource

    try:
        return ModelSource(engine, pinned=model)()
    except (OSError, ValueError, TypeError) as exc:
        print(f"cannot load model {model}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


@app.command()
def train(
    since: Annotated[
        str | None, typer.Option("--from", help="Learn from events at or after this date.")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--to", help="Learn from events at or before this time (a date is its midnight, UTC)."
        ),
    ] = None,
    horizon_days: Annotated[
        float, typer.Option(help="Churned = no purchase within this many days after a cutoff.")
    ] = 90.0,
    every_days: Annotated[int, typer.Option(help="Days between snapshot cutoffs.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed (training is deterministic).")] = 0,
    models_dir: Annotated[
        Path, typer.Option(help="Where model folders are written.")
    ] = DEFAULT_DATA_DIR / "models",
    promote: Annotated[bool, typer.Option(help="Make the new model the current one.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Train a churn model from the event store and compare it with RFM and BG/NBD baselines.

    The latest quarter of the cutoffs is held out. A history too short for a
    time split (six to twelve months at a 90-day horizon) shrinks its warm-up
    to four weeks at least and is validated in customer-grouped folds on those
    latest cutoffs. After validation the model is refitted on every settled
    snapshot; the card says which validation was done and keeps its metrics.
    """
    from rich.console import Console
    from rich.table import Table

    from churnwatch import store
    from churnwatch.models.training import TrainingError
    from churnwatch.train import train_from_store

    console = Console(stderr=True)
    engine = store.make_engine(_settings().db_url)
    store.upgrade(engine)
    try:
        with console.status("training") as status:
            card, folder = train_from_store(
                engine,
                models_dir,
                since=_date(since),
                until=_date(until),
                horizon_days=horizon_days,
                every_days=every_days,
                seed=seed,
                promote=promote,
                on_step=lambda step: status.update(step),
            )
    except TrainingError as exc:
        console.print(f"[red]cannot train:[/red] {exc}")
        raise typer.Exit(2) from None
    if json_out:
        print(card.to_json().decode())
        return
    table = Table(title=f"{card.version}  (held-out {card.n_valid:,} snapshots)")
    table.add_column("metric")
    for name in card.metrics:
        table.add_column(name, justify="right")
    for metric in card.metrics["model"]:
        table.add_row(metric, *(f"{card.metrics[n][metric]:.4f}" for n in card.metrics))
    Console().print(table)
    Console().print(card.validation)
    print(f"saved {folder}{' (promoted: current model)' if promote else ''}")


@app.command()
def replay(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Rows as of this time (events with ts <= it count)."),
    ] = None,
    scores_out: Annotated[
        Path | None,
        typer.Option(help="With --as-of: CSV file, one row per customer, DESIGN.md's columns."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--from", help="Backtest: judge alerts from this date (default: first event)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--to", help="Backtest: replay and judge up to this time (default: last event)."
        ),
    ] = None,
    capacity: Annotated[
        str, typer.Option(help="Backtest: alerts the team can work, e.g. 50/day or 200/week.")
    ] = "50/day",
    horizon_days: Annotated[
        float, typer.Option(help="Backtest: churned = no purchase within this many days.")
    ] = 90.0,
    contact_cost: Annotated[
        float, typer.Option(help="Backtest: what working one alert costs, in spend units.")
    ] = 0.0,
    precision_floor: Annotated[
        float,
        typer.Option(help="Backtest: least share of a tier's alerts followed by churn (0-1)."),
    ] = 0.25,
    winback_rate: Annotated[
        float,
        typer.Option(help="Backtest: win-back rate assumed until 20 tasks of a tier are settled."),
    ] = 0.2,
    report: Annotated[
        Path, typer.Option(help="Backtest: folder for report.md and its PNG plots.")
    ] = Path("backtest-report"),
    alerts_out: Annotated[
        Path | None, typer.Option(help="Backtest: write the alerts that would have fired (JSONL).")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Backtest: print the findings as JSON.")
    ] = False,
    publish: Annotated[
        bool,
        typer.Option(help="Re-publish the stored events to CHURNWATCH_BROKER in event-time order."),
    ] = False,
    rate: Annotated[
        float | None, typer.Option(help="With --publish: events per second (default: unlimited).")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Model folder to score with (default: the promoted model, or the rule)."),
    ] = None,
) -> None:
    """Replay the event store, no broker: backtest thresholds, rows as of T, or re-publish.

    \b
    churnwatch replay --from 2026-01-01 --capacity 50/day     backtest and threshold report
    churnwatch replay --as-of 2026-06-30 --scores-out s.csv   every customer's row as of T
    churnwatch replay --publish --rate 2000                   rebuild a fresh deployment
    """
    from churnwatch import store

    engine = store.make_engine(_settings().db_url)
    store.upgrade(engine)
    if publish:
        _replay_publish(engine, _date(since), _date(until), rate)
    elif as_of is not None:
        if scores_out is None:
            raise typer.BadParameter("--as-of needs --scores-out FILE.csv")
        _replay_as_of(engine, _date(as_of), scores_out, model)  # type: ignore[arg-type]
    else:
        _replay_backtest(
            engine,
            since=_date(since),
            until=_date(until),
            capacity_per_day=_per_day(capacity),
            horizon_days=horizon_days,
            economics={
                "contact_cost": contact_cost,
                "precision_floor": precision_floor,
                "winback_prior": winback_rate,
            },
            report=report,
            alerts_out=alerts_out,
            json_out=json_out,
            model=model,
        )


def _per_day(capacity: str) -> float:
    """``50/day`` or ``200/week`` (or a bare number per day) as alerts per day."""
    count, _, unit = capacity.partition("/")
    days = {"": 1.0, "day": 1.0, "week": 7.0}.get(unit.strip().lower())
    try:
        value = float(count)
    except ValueError:
        value = -1.0
    if days is None or value <= 0:
        raise typer.BadParameter(f"--capacity {capacity!r}: write e.g. 50/day or 200/week")
    return value / days


def _replay_as_of(engine: Any, when: datetime, scores_out: Path, model: Path | None) -> None:
    from churnwatch import store
    from churnwatch.events import from_payload
    from churnwatch.replay import rows_as_of, write_csv

    scorer = _scorer(engine, model)
    policy = _policy()
    with engine.connect() as conn:
        events = (from_payload(p) for p in store.read_events(conn, until=when))
        rows = rows_as_of(
            events, when.timestamp(), scorer, policy, partitions=_settings().partitions
        )
        count = write_csv(rows, scores_out)
    print(
        f"{count} customers as of {when.isoformat()} scored by {scorer.version} "
        f"written to {scores_out}"
    )


def _replay_backtest(
    engine: Any,
    *,
    since: datetime | None,
    until: datetime | None,
    capacity_per_day: float,
    horizon_days: float,
    economics: dict[str, float],
    report: Path,
    alerts_out: Path | None,
    json_out: bool,
    model: Path | None,
) -> None:
    from rich.progress import Progress

    from churnwatch import store
    from churnwatch.backtest_report import analyse, write_report
    from churnwatch.events import from_payload
    from churnwatch.replay import replay_history
    from churnwatch.winback_report import fetch

    scorer = _scorer(engine, model)
    policy, playbook = _policy(), _playbook()
    with engine.connect() as conn:
        total = store.count_events(conn, until=until)
        if total == 0:
            print(
                "the event store holds no events to replay: load some with churnwatch import",
                file=sys.stderr,
            )
            raise typer.Exit(2)
        with Progress(transient=True, disable=json_out) as progress:
            task = progress.add_task("replaying", total=total)
            events = (from_payload(p) for p in store.read_events(conn))
            replayed = replay_history(
                events,
                scorer,
                policy,
                playbook,
                partitions=_settings().partitions,
                until=None if until is None else until.timestamp(),
                on_event=lambda n: progress.advance(task, n),
            )
    start = since.timestamp() if since else replayed.first_s
    end = until.timestamp() if until else replayed.last_s
    if alerts_out is not None:
        alerts_out.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in replayed.alerts))
    findings = analyse(
        replayed,
        policy,
        start=start,  # type: ignore[arg-type]
        end=end,  # type: ignore[arg-type]
        horizon_days=horizon_days,
        capacity_per_day=capacity_per_day,
        scorer=scorer.version,
        winback=fetch(engine)["winback_effectiveness"],
        **economics,
    )
    path = write_report(findings, report)
    if json_out:
        print(orjson.dumps({**findings.to_dict(), "report": str(path)}).decode())
        return
    every, best = findings.current_metrics["all"], findings.recommended_metrics["all"]
    print(
        f"replayed {replayed.replayed:,} events with {scorer.version}: "
        f"{len(replayed.alerts):,} alerts"
    )
    print(
        f"current thresholds: {every.alerts_per_day:.1f} alerts/day, "
        f"recall {every.recall or 0:.1%}, value caught {every.value_caught:,.0f}"
    )
    fits = "" if findings.recommendation.fits else " (no thresholds fit the capacity)"
    print(
        f"recommended{fits}: {best.alerts_per_day:.1f} alerts/day, recall {best.recall or 0:.1%}, "
        f"value caught {best.value_caught:,.0f}"
    )
    if findings.plan is not None:
        print(
            f"expected net value saved: {findings.plan.current_net_value:,.0f} now, "
            f"{findings.plan.net_value:,.0f} recommended"
        )
        for tier, why in findings.plan.held.items():
            print(f"{tier} keeps its thresholds: {why}")
    print(f"report: {path}")


def _replay_publish(
    engine: Any, since: datetime | None, until: datetime | None, rate: float | None
) -> None:
    from churnwatch import store
    from churnwatch.producing import publish_stored
    from churnwatch.topics import ensure_topics_for

    settings = _settings()
    if settings.broker is None:
        raise typer.BadParameter("--publish needs CHURNWATCH_BROKER: the broker to rebuild from")
    ensure_topics_for(settings, settings.broker)
    with engine.connect() as conn:
        total = store.count_events(conn, since=since, until=until)
        progress = _progress(total)
        sent = publish_stored(
            store.read_events(conn, since=since, until=until),
            settings.broker,
            rate=rate,
            on_record=progress,
            client=settings.kafka_security.client_config(),
        )
    print(f"\npublished {sent:,} stored events to {settings.broker} in event-time order")


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``a=b`` items (each may hold several, comma-separated) as a dict."""
    out = {}
    for value in values or []:
        for item in value.split(","):
            name, sep, target = item.partition("=")
            if not sep or not name.strip() or not target.strip():
                raise typer.BadParameter(f"{option} {item!r}: write field=value")
            out[name.strip()] = target.strip()
    return out


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file of historic events.")],
    topic: Annotated[
        str | None,
        typer.Option(help="purchases, complaints or engagement (default: from each type)."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="field=column pairs, e.g. customer_id=CustomerID,ts=InvoiceDate,amount=Sales.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="field=value constants for every row, e.g. currency=GBP."),
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="type of rows that have none, e.g. purchase.")
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(help="strptime format of ts, e.g. '%d/%m/%Y %H:%M' (naive times are UTC)."),
    ] = None,
    negative_as_refund: Annotated[
        bool, typer.Option(help="A purchase with a negative amount is a refund of it.")
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(help="JSONL of rejected rows and reasons (default: FILE.rejects.jsonl)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load historic events into the event store (one transaction; re-importing adds nothing)."""
    from rich.progress import Progress

    from churnwatch import store
    from churnwatch.events import INPUT_TOPICS
    from churnwatch.importing import ImportFailed, RowMapping, import_file

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file")
    if topic is not None and topic not in INPUT_TOPICS:
        raise typer.BadParameter(f"--topic {topic!r}: one of {', '.join(INPUT_TOPICS)}")
    mapping = RowMapping(
        columns=_pairs(map_, "--map"),
        constants=_pairs(set_, "--set"),
        topic=topic,
        default_type=event_type,
        date_format=date_format,
        negative_as_refund=negative_as_refund,
    )
    settings = _settings()
    engine = store.make_engine(settings.db_url)
    store.upgrade(engine)
    rejects = rejects or file.with_name(file.name + ".rejects.jsonl")
    try:
        with rejects.open("wb") as out, Progress(transient=True, disable=json_out) as progress:
            task = progress.add_task(f"importing {file.name}", total=None)
            summary = import_file(
                engine,
                file,
                mapping,
                rejects=out,
                now=store.utcnow(),
                max_future_s=settings.max_future_s,
                on_row=lambda n: progress.advance(task, n),
            )
    except ImportFailed as exc:
        rejects.unlink(missing_ok=True)
        print(f"cannot import {file}: {exc}; nothing was stored", file=sys.stderr)
        raise typer.Exit(2) from None
    if not summary.rejected:
        rejects.unlink(missing_ok=True)
    if json_out:
        print(orjson.dumps({**summary.to_dict(), "rejects": str(rejects)}).decode())
        return
    print(
        f"{summary.rows:,} rows: {summary.stored:,} stored, "
        f"{summary.already_stored:,} already stored, {summary.rejected:,} rejected"
    )
    for reason, count in summary.reasons.most_common(5):
        print(f"  {count:,}: {reason}")
    if summary.rejected:
        print(f"rejected rows and their reasons: {rejects}")


winback_app = typer.Typer(help="Win-back evaluation: effectiveness and failure analysis.")
app.add_typer(winback_app, name="winback")


@winback_app.command("report")
def winback_report(
    json_out: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Return rate, time to contact and satisfaction by reason, action and tier; failures."""
    from churnwatch import store
    from churnwatch.winback_report import fetch, render

    engine = store.make_engine(_settings().db_url)
    store.upgrade(engine)
    report = fetch(engine)
    if json_out:
        print(orjson.dumps(report, default=str).decode())
    else:
        render(report)


db_app = typer.Typer(help="The SQL store's schema.")
app.add_typer(db_app, name="db")
topics_app = typer.Typer(help="The Kafka topics churnwatch reads and writes.")
app.add_typer(topics_app, name="topics")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the store (CHURNWATCH_DB_URL) to the newest schema revision (Alembic)."""
    import sqlalchemy as sa

    from churnwatch import store

    settings = _settings()
    shown = sa.make_url(settings.db_url).render_as_string(hide_password=True)
    engine = store.make_engine(settings.db_url)
    try:
        store.upgrade(engine)
        with engine.connect() as conn:
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.SQLAlchemyError as exc:
        typer.secho(f"error: cannot upgrade {shown}: {exc.orig or exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    typer.echo(f"{shown} is at schema revision {revision}")


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(help="Partitions per topic (default: CHURNWATCH_PARTITIONS).")
    ] = None,
    replication_factor: Annotated[
        int | None,
        typer.Option(help="Replicas per partition (default: CHURNWATCH_REPLICATION_FACTOR)."),
    ] = None,
) -> None:
    """Create the missing topics on CHURNWATCH_BROKER; `customers` is compacted."""
    from dataclasses import replace

    from churnwatch.topics import ALL_TOPICS, TopicLayoutError, ensure_topics_for

    settings = _settings()
    if settings.broker is None:
        raise typer.BadParameter("set CHURNWATCH_BROKER to the cluster to create topics on")
    try:
        settings = replace(
            settings,
            partitions=partitions or settings.partitions,
            replication_factor=replication_factor or settings.replication_factor,
        )
        created = ensure_topics_for(settings, settings.broker)
    except (TopicLayoutError, ValueError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    except Exception as exc:  # kafka-python's errors share no useful base
        typer.secho(f"error: cannot create topics on {settings.broker}: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
    for name in ALL_TOPICS:
        state = "created" if name in created else "exists"
        typer.echo(f"{state:>8}  {name}")
    typer.echo(
        f"{len(created)} created, {settings.partitions} partitions each, "
        f"replication factor {settings.replication_factor}"
    )


dashboard_app = typer.Typer(help="Grafana dashboards as code: export the JSON or push it.")
app.add_typer(dashboard_app, name="dashboard")


@dashboard_app.command("export")
def dashboard_export(
    out: Annotated[
        Path, typer.Option(help="Folder for the JSON files (one per dashboard).")
    ] = Path("deploy/grafana/dashboards"),
) -> None:
    """Write every dashboard's JSON model, as Grafana's file provisioning loads it."""
    from churnwatch.dashboards.push import export

    for path in export(out):
        typer.echo(f"wrote {path}")


@dashboard_app.command("push")
def dashboard_push(
    url: Annotated[str, typer.Option(help="Grafana's URL, e.g. http://localhost:3000.")],
    token: Annotated[
        str | None,
        typer.Option(envvar="GRAFANA_TOKEN", help="Service account token (or GRAFANA_TOKEN)."),
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            help="The store's PostgreSQL URL as Grafana's server reaches it "
            "(default: CHURNWATCH_DB_URL)."
        ),
    ] = None,
    prometheus_url: Annotated[
        str, typer.Option(help="Prometheus as Grafana's server reaches it.")
    ] = "http://prometheus:9090",
) -> None:
    """Create or update the data sources, the folder and every dashboard in a Grafana."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException

    from churnwatch.dashboards.push import DataSources, push

    sources = DataSources(db_url or _settings().db_url, prometheus_url)
    try:
        sources.definitions()
        api = GrafanaApi.from_url(url, credential=token)
        for line in push(api, sources):
            typer.echo(line)
    except ValueError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    except (GrafanaException, OSError) as exc:
        typer.secho(f"error: could not upload to Grafana at {url}: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None


def _progress(total: int | None):
    """A per-record callback that redraws a one-line counter on stderr."""
    seen = 0

    def tick(_record: object) -> None:
        nonlocal seen
        seen += 1
        if seen % 1000 == 0 or seen == total:
            of = f"/{total}" if total else ""
            sys.stderr.write(f"\rproduced {seen}{of} events")
            sys.stderr.flush()

    return tick


def main() -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
