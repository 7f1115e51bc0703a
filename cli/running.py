"""Commands that run the system: the embedded broker, the worker, the simulator, the demo."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer

from churnwatch.cli import common
from churnwatch.cli.common import app
from churnwatch.settings import DEFAULT_DATA_DIR
from churnwatch.times import utcnow


@app.command()
def broker(
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1 to listen on.")
    ] = 9092,
) -> None:
    """Run the embedded Kafka-compatible broker (tansu, memory only) in the foreground."""
    from churnwatch.sim.broker import BrokerError, EmbeddedBroker

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
    from churnwatch.streams.web import WebSetupError, guard_for
    from churnwatch.streams.worker import run_worker

    # a bad file stops here, before any broker or store is touched
    common.policy(), common.playbook()
    settings = common.settings()
    try:
        if settings.web_port > 0:
            guard_for(settings)  # no web server without a token, as run_worker refuses it
        # an unusable or unreachable store fails here in one line, within the connect timeout
        common.store_engine().dispose()
        # once running, the Kafka client's own warnings are the worker's log, at --log-level
        logging.getLogger("aiokafka").setLevel(logging.NOTSET)
        run_worker(settings, log_level=log_level)
    except WebSetupError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None


@app.command()
def simulate(
    events: Annotated[int | None, typer.Option(min=1, help="Stop after this many records.")] = None,
    days: Annotated[int, typer.Option(min=1, help="Days of history, ending now.")] = 365,
    customers: Annotated[
        int | None, typer.Option(min=1, help="Population size (default: sized for --events).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed, the same events.")] = 7,
    bad_share: Annotated[float, typer.Option(help="Share of bad records mixed in.")] = 0.01,
    churn_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of customers who churn.")
    ] = 0.3,
    out: Annotated[
        Path | None, typer.Option(help="Write JSONL here instead of producing to the broker.")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Ground-truth JSONL (default: beside --out or data dir).")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(callback=common.positive, help="Records per second (broker only)."),
    ] = None,
) -> None:
    """Produce a seeded synthetic population's events to the broker or to a file."""
    from churnwatch.sim.producing import produce, write_jsonl
    from churnwatch.sim.simulator import Simulation, customers_for, records, truth_rows

    if not 0 <= bad_share < 1 or not 0 <= churn_share <= 1:
        raise typer.BadParameter("--bad-share must be in [0, 1) and --churn-share in [0, 1]")
    now = utcnow().replace(microsecond=0)
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

        settings = common.settings()
        if settings.broker is None:
            raise typer.BadParameter("set CHURNWATCH_BROKER, or write to a file with --out")
        ensure_topics_for(settings, settings.broker)
        client = common.producer_config(settings)
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
    customers: Annotated[
        int | None, typer.Option(help="Population size (default: sized for --events).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 7,
    bad_share: Annotated[float, typer.Option(help="Share of bad records mixed in.")] = 0.01,
    rate: Annotated[
        float | None, typer.Option(help="Records per second (default: 500 without --events).")
    ] = None,
) -> None:
    """Run broker, worker and simulator together on embedded defaults.

    Without ``--events`` it plays a year of history, says when that is done,
    and goes on live, serving the worklist, until Ctrl-C.
    """
    from churnwatch.sim.demo import DemoError, check_port, run_demo

    settings = common.settings()
    if events is None and rate is None:
        rate = 500.0
    progress = None if json_out else common.progress(events)
    link = None
    try:
        if settings.web_port:
            check_port(settings.web_host, settings.web_port)
            if not settings.web_credentials:
                # the web server needs a token: one for this run, in the printed link
                import secrets
                from dataclasses import replace

                settings = replace(settings, web_token=secrets.token_urlsafe(24))
            link = f"http://127.0.0.1:{settings.web_port}/login?token={settings.web_token or ''}"
            typer.echo(f"retention worklist: {link}", err=True)

        def live(played: int) -> None:
            where = f" at {link}" if link else ""
            typer.echo(
                f"\nthe simulated history is played ({played:,} records); customers go on live "
                f"at the pace of the clock, and the worklist stays open{where} until Ctrl-C",
                err=True,
            )

        summary = run_demo(
            settings,
            events=events,
            days=days,
            customers=customers,
            seed=seed,
            bad_share=bad_share,
            rate=rate,
            on_record=progress,
            on_live=live,
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
