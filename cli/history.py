"""Commands over the stored history: import, train, replay (backtest, rows as of T, re-publish)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from churnwatch.cli import common
from churnwatch.cli.common import app
from churnwatch.models.candidate_names import DESCRIPTIONS


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
        float,
        typer.Option(help="Churned = no purchase within this many days after a cutoff (above 0)."),
    ] = 90.0,
    every_days: Annotated[int, typer.Option(help="Days between snapshot cutoffs (1 or more).")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed (training is deterministic).")] = 0,
    models_dir: Annotated[
        Path | None,
        typer.Option(help="Where model folders are written (default: CHURNWATCH_MODELS_DIR)."),
    ] = None,
    candidate: Annotated[
        str | None,
        typer.Option(
            help="Save this candidate instead of the champion: "
            + ", ".join(f"{name} ({what})" for name, what in DESCRIPTIONS.items())
            + "."
        ),
    ] = None,
    promote: Annotated[bool, typer.Option(help="Make the saved model the current one.")] = False,
    force: Annotated[
        bool,
        typer.Option(help="Promote even a candidate that ranks worse than a baseline."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Train every candidate scorer from the event store and save the champion.

    The candidates, two learned models and the baselines (the purchase model,
    RFM, recency, tenure, recent activity), are judged on the same held-out
    latest quarter of the cutoffs, each metric with a 95 % bootstrap interval
    over customers. The champion, the best held-out ROC AUC, is refitted on
    every settled snapshot and saved. --promote refuses a candidate that ranks
    worse than the best baseline beyond the interval; --force overrides.
    A history too short for a time split (six to twelve months at a 90-day
    horizon) shrinks its warm-up to four weeks at least and is validated in
    customer-grouped folds on those latest cutoffs.
    """
    from rich.console import Console

    from churnwatch.models.training import TrainingError
    from churnwatch.offline.training import PromotionRefused, train_from_store

    if candidate is not None and candidate not in DESCRIPTIONS:
        raise typer.BadParameter(
            f"--candidate {candidate!r}: choose one of {', '.join(DESCRIPTIONS)}"
        )
    console = Console(stderr=True)
    # the range, the horizon and the step are checked by train_from_store, in one line
    since_at, until_at = common.parse_date(since, "--from"), common.parse_date(until, "--to")
    engine = common.store_engine()
    refused = None
    try:
        with console.status("training") as status:
            card, folder = train_from_store(
                engine,
                models_dir or common.settings().models_dir,
                since=since_at,
                until=until_at,
                horizon_days=horizon_days,
                every_days=every_days,
                seed=seed,
                candidate=candidate,
                promote=promote,
                force=force,
                on_step=lambda step: status.update(step),
            )
    except PromotionRefused as exc:
        refused = exc
    except TrainingError as exc:
        # one plain line: rich would wrap it at 80 columns and read [..] in it as markup
        print(f"cannot train: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    if refused is not None:
        print(f"error: {refused}", file=sys.stderr)
        raise typer.Exit(3)
    if json_out:
        print(card.to_json().decode())
        return
    _show_candidates(card)
    print(card.validation)
    print(f"window: {card.window}")
    if card.history_kind:
        print(f"history: {card.history_kind}: {card.history_note}")
    if card.clv_note:
        print(card.clv_note)
    print(f"champion: {card.champion}; saved {card.candidate} as {folder}", end="")
    print(" (promoted: current model)" if promote else "")


def _show_candidates(card: Any) -> None:
    """Every candidate's held-out metrics with their intervals (never cut when piped)."""
    from churnwatch.tables import show

    metrics = ("roc_auc", "pr_auc", "brier", "precision_top_10pct")
    rows = []
    for name, values in card.metrics.items():
        cells = []
        for metric in metrics:
            low, high = card.intervals.get(name, {}).get(metric, [None, None])
            shown = f"{values[metric]:.4f}"
            cells.append(shown if low is None else f"{shown} [{low:.3f}, {high:.3f}]")
        rows.append([f"{name} (champion)" if name == card.champion else name, *cells])
    title = f"{card.version}: held-out {card.n_valid:,} snapshots, 95 % intervals over customers"
    show(["candidate", *metrics], rows, title=title)


@app.command()
def replay(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Rows as of this time (events with ts <= it count)."),
    ] = None,
    scores_out: Annotated[
        Path | None,
        typer.Option(help="With --as-of: CSV file, one row per customer (docs/contract.md)."),
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
        float,
        typer.Option(
            callback=common.positive,
            help="Backtest: churned = no purchase within this many days (above 0).",
        ),
    ] = 90.0,
    contact_cost: Annotated[
        float,
        typer.Option(
            help="Backtest: what working one alert costs, in the purchases' currency "
            "(0 or more; at 0 alerts are free and the recommendation favours volume)."
        ),
    ] = 0.0,
    precision_floor: Annotated[
        float,
        typer.Option(
            help="Backtest: least share of alerts followed by churn, per tier and over all (0-1)."
        ),
    ] = 0.25,
    winback_rate: Annotated[
        float,
        typer.Option(
            help="Backtest: win-back rate assumed until 20 tasks of a tier are settled (0-1)."
        ),
    ] = 0.2,
    min_evidence: Annotated[
        int,
        typer.Option(
            help="Backtest: judged alerts a threshold needs before it can be recommended; "
            "a tier with none keeps its thresholds."
        ),
    ] = 30,
    currency: Annotated[
        str | None,
        typer.Option(
            help="Backtest: the currency code the amounts are in, for the report "
            "(default: the one the purchases carry; nothing is converted)."
        ),
    ] = None,
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
        float | None,
        typer.Option(
            callback=common.positive,
            help="With --publish: events per second (default: unlimited).",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Model folder to score with (default: the promoted model, or the rule)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Backtest: processes that replay the lanes side by side (default: the cores; "
            "at most CHURNWATCH_PARTITIONS). With --dask: tasks (default: the cluster's threads).",
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Backtest: replay the lanes on this Dask scheduler, e.g. tcp://host:8786 "
            "(needs Dask's distributed package); its workers open CHURNWATCH_DB_URL, "
            "so they must reach it.",
        ),
    ] = None,
) -> None:
    """Replay the event store, no broker: backtest thresholds, rows as of T, or re-publish.

    \b
    churnwatch replay --from 2026-01-01 --capacity 50/day     backtest and threshold report
    churnwatch replay --as-of 2026-06-30 --scores-out s.csv   every customer's row as of T
    churnwatch replay --publish --rate 2000                   rebuild a fresh deployment
    """
    # every option is checked before the store is opened or a replay starts
    since_at, until_at = common.date_range(since, until)
    when = common.parse_date(as_of, "--as-of")
    if when is not None and scores_out is None:
        raise typer.BadParameter("--as-of needs --scores-out FILE.csv")
    capacity_per_day = common.per_day(capacity)
    economics = _checked_economics(
        {
            "contact_cost": contact_cost,
            "precision_floor": precision_floor,
            "winback_prior": winback_rate,
            "min_evidence": min_evidence,
            "currency": currency,
        }
    )
    if publish and common.settings().broker is None:
        raise typer.BadParameter("--publish needs CHURNWATCH_BROKER: the broker to rebuild from")
    engine = common.store_engine()
    if publish:
        _replay_publish(engine, since_at, until_at, rate)
    elif when is not None:
        _replay_as_of(engine, when, scores_out, model)  # type: ignore[arg-type]
    else:
        _replay_backtest(
            engine,
            since=since_at,
            until=until_at,
            capacity_per_day=capacity_per_day,
            horizon_days=horizon_days,
            economics=economics,
            report=report,
            alerts_out=alerts_out,
            json_out=json_out,
            model=model,
            workers=workers,
            dask=dask,
        )


def _replay_as_of(engine: Any, when: datetime, scores_out: Path, model: Path | None) -> None:
    from churnwatch.offline import api
    from churnwatch.offline.replay import write_csv

    scorer = common.scorer_for(engine, model)
    rows = api.records_as_of(
        engine, when, scorer=scorer, policy=common.policy(), partitions=common.settings().partitions
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
    economics: dict[str, Any],
    report: Path,
    alerts_out: Path | None,
    json_out: bool,
    model: Path | None,
    workers: int | None,
    dask: str | None,
) -> None:
    from rich.progress import Progress

    from churnwatch import store
    from churnwatch.offline import api
    from churnwatch.offline.parallel import ReplayError
    from churnwatch.offline.report import (
        notes,
        segment_plan_table,
        segment_table,
        summary_table,
        write_report,
    )
    from churnwatch.tables import show

    scorer = common.scorer_for(engine, model)
    with engine.connect() as conn:
        total = store.count_events(conn, until=until)
    if total == 0:
        print(
            "the event store holds no events to replay: load some with churnwatch import",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    try:
        with Progress(transient=True, disable=json_out) as progress:
            task = progress.add_task("replaying", total=total)
            findings = api.backtest(
                engine,
                since=since,
                until=until,
                capacity_per_day=capacity_per_day,
                horizon_days=horizon_days,
                scorer=scorer,
                policy=common.policy(),
                playbook=common.playbook(),
                partitions=common.settings().partitions,
                on_event=lambda n: progress.advance(task, n),
                workers=workers,
                dask=dask,
                **economics,
            )
    except ReplayError as exc:
        print(f"cannot replay: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    if alerts_out is not None:
        lines = (orjson.dumps(a) + b"\n" for a in findings.alerts)
        alerts_out.write_bytes(b"".join(lines))
    path = write_report(findings, report)
    if json_out:
        print(orjson.dumps({**findings.to_dict(), "report": str(path)}).decode())
        return
    fits = "" if findings.recommendation.fits else " (no thresholds fit the capacity)"
    print(
        f"replayed {findings.events:,} events with {scorer.version}: "
        f"{len(findings.alerts):,} alerts; recommended thresholds{fits}:\n"
    )
    # a table through a pipe is Markdown: rich would cut its cells to 80 columns
    headers, rows = summary_table(findings, brief=True)
    show(headers, rows)
    if findings.segments:
        show(*segment_table(findings), title="per segment (thresholds per tier)")
    if findings.segment_plans:
        show(*segment_plan_table(findings), title="thresholds of their own, per segment")
    for line in notes(findings):
        print(line)
    print(f"report: {path}")


def _checked_economics(economics: dict[str, Any]) -> dict[str, Any]:
    """The backtest's settings, checked; exit 2 with one line naming the bad option."""
    problem = _setting_problem(economics)
    if problem is not None:
        print(f"cannot backtest: {problem}", file=sys.stderr)
        raise typer.Exit(2)
    code = economics["currency"]
    return {**economics, "currency": None if code is None else code.strip().upper()}


def _setting_problem(economics: dict[str, Any]) -> str | None:
    """What is wrong with a backtest setting, naming its option; ``None`` if nothing."""
    from churnwatch.alerts.economics import SettingError, check

    try:
        check(
            winback_rate=economics["winback_prior"],
            contact_cost=economics["contact_cost"],
            precision_floor=economics["precision_floor"],
            min_evidence=economics["min_evidence"],
        )
    except SettingError as exc:
        return f"--{exc.setting.replace('_', '-')}: {exc}"
    given = economics["currency"]
    if given is None:
        return None
    code = given.strip()
    if len(code) == 3 and code.isascii() and code.isalpha():
        return None
    return f"--currency {given!r}: give a three-letter code, e.g. EUR"


def _replay_publish(
    engine: Any, since: datetime | None, until: datetime | None, rate: float | None
) -> None:
    from churnwatch import store
    from churnwatch.sim.producing import publish_stored
    from churnwatch.topics import ensure_topics_for

    settings = common.settings()
    if settings.broker is None:
        raise typer.BadParameter("--publish needs CHURNWATCH_BROKER: the broker to rebuild from")
    ensure_topics_for(settings, settings.broker)
    with engine.connect() as conn:
        total = store.count_events(conn, since=since, until=until)
        progress = common.progress(total)
        sent = publish_stored(
            store.read_events(conn, since=since, until=until),
            settings.broker,
            rate=rate,
            on_record=progress,
            client=common.producer_config(settings),
        )
    print(f"\npublished {sent:,} stored events to {settings.broker} in event-time order")


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
    far_margin: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="A row is far out when it lies more than this share of the length of the "
            "file's dense history before or after it (and more than 7 days).",
        ),
    ] = 0.25,
    strict: Annotated[
        bool, typer.Option(help="Reject far-out rows instead of storing and flagging them.")
    ] = False,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="Text encoding of a CSV or JSONL file, e.g. cp1252 or latin-1 "
            "(default: UTF-8 if the file is, else detected)."
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="Delimiter of a CSV file, e.g. ';' or tab (default: detected)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Load historic events into the event store (one transaction; re-importing adds nothing).

    Rows far outside the dense part of the file's history (a date 400 days back in
    a half-year file, a 1970 default date) are stored, and counted and shown in
    the summary; --strict rejects them. An import that rejects every row exits 2.
    """
    from rich.progress import Progress

    from churnwatch import store
    from churnwatch.events import INPUT_TOPICS
    from churnwatch.offline.importing import ImportFailed, RowMapping, import_file
    from churnwatch.offline.sniffing import checked_delimiter, checked_encoding

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file")
    if not far_margin >= 0:
        raise typer.BadParameter(f"--far-margin {far_margin:g}: give a share of 0 or more")
    if topic is not None and topic not in INPUT_TOPICS:
        raise typer.BadParameter(f"--topic {topic!r}: one of {', '.join(INPUT_TOPICS)}")
    try:
        encoding = None if encoding is None else checked_encoding(encoding)
        delimiter = None if delimiter is None else checked_delimiter(delimiter)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    mapping = RowMapping(
        columns=common.pairs(map_, "--map"),
        constants=common.pairs(set_, "--set"),
        topic=topic,
        default_type=event_type,
        date_format=date_format,
        negative_as_refund=negative_as_refund,
        encoding=encoding,
        delimiter=delimiter,
    )
    settings = common.settings()
    engine = common.store_engine()
    rejects = rejects or file.with_name(file.name + ".rejects.jsonl")
    try:
        with rejects.open("wb") as out, Progress(transient=True, disable=json_out) as progress:
            task = progress.add_task(f"importing {file.name}", total=None)
            # import_file, not the notebook's api.import_events: it takes the text format
            summary = import_file(
                engine,
                file,
                mapping,
                rejects=out,
                now=store.utcnow(),
                max_future_s=settings.max_future_s,
                far_margin=far_margin,
                strict=strict,
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
    else:
        _print_import(summary, rejects)
    if summary.all_rejected:
        print(
            f"cannot import {file}: every one of its {summary.rows:,} rows was rejected "
            f"({_counted(summary)}); nothing was stored. Check --map, --set, "
            "--type, --date-format, --encoding and --delimiter against the file's columns",
            file=sys.stderr,
        )
        raise typer.Exit(2)


def _counted(summary: Any) -> str:
    """Why rows were rejected: every failing field with its rows, then reasons of no field."""
    counted = list(summary.fields.most_common())
    counted += [
        (reason, count)
        for reason, count in summary.reasons.most_common()
        if not any(f in summary.fields for f in reason.split(", "))
    ]
    return "; ".join(f"{what}: {n:,} row{'' if n == 1 else 's'}" for what, n in counted)


def _print_import(summary: Any, rejects: Path) -> None:
    """The import summary: counts, each reason with its first row, the far-out rows."""
    from churnwatch.offline.sniffing import shown

    text = summary.text
    if text is not None and text.detected:
        delimiter = "" if text.delimiter is None else f", delimiter {text.delimiter!r}"
        print(f"read as {shown(text.encoding)}{delimiter} (--encoding, --delimiter to change)")
    print(
        f"{summary.rows:,} rows: {summary.stored:,} stored, "
        f"{summary.already_stored:,} already stored, {summary.rejected:,} rejected"
    )
    for reason, count in summary.reasons.most_common(5):
        example = summary.examples[reason][0]
        print(f"  {count:,}: {reason} (row {example['row']}: {example['error']})")
    if len(summary.reasons) > 5:
        others = summary.reasons.most_common()[5:]
        print(f"  {sum(n for _, n in others):,}: {len(others)} other reasons (in the rejects file)")
    if summary.far_out:
        done = "rejected (--strict)" if summary.strict else "stored, but flagged (--strict rejects)"
        print(
            f"{summary.far_out.total():,} rows far outside the dense part of the file's history, "
            f"{summary.bulk.span()}, by more than {summary.bulk.margin_s / 86400:.0f} days: {done}"
        )
        for reason, count in summary.far_out.most_common():
            examples = summary.examples[reason]
            rows = ", ".join(str(e["row"]) for e in examples)
            print(f"  {count:,}: {reason} (rows {rows}{', …' if count > len(examples) else ''})")
    if summary.fields:
        fields = ", ".join(f"{name} {count:,}" for name, count in summary.fields.most_common())
        print(f"rejected rows per failing field: {fields}")
    if summary.rejected:
        print(f"rejected rows and their reasons: {rejects}")
