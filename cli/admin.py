"""Operating commands: win-back report, schema, topics, Grafana dashboards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from churnwatch.cli import common
from churnwatch.cli.common import app
from churnwatch.cli.failures import Code, Failure, explain

winback_app = typer.Typer(help="Win-back evaluation: effectiveness and failure analysis.")
app.add_typer(winback_app, name="winback")
db_app = typer.Typer(help="The SQL store's schema.")
app.add_typer(db_app, name="db")
topics_app = typer.Typer(help="The Kafka topics churnwatch reads and writes.")
app.add_typer(topics_app, name="topics")
dashboard_app = typer.Typer(help="Grafana dashboards as code: export the JSON or push it.")
app.add_typer(dashboard_app, name="dashboard")


@winback_app.command("report")
def winback_report(
    json_out: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    min_customers: Annotated[
        int,
        typer.Option(min=1, help="Cases each group needs before its uplift counts as evidence."),
    ] = 30,
    contact_cost: Annotated[
        float,
        typer.Option(min=0.0, help="What one contact costs, in units of a customer's return."),
    ] = 0.0,
) -> None:
    """Return rate, time to contact and satisfaction by reason, action and tier; failures;
    the uplift of each action against its control group; the action to adopt."""
    from churnwatch.winback.report import fetch, render

    report = fetch(
        common.store_engine(),
        min_customers=min_customers,
        playbook=common.playbook(),
        contact_cost=contact_cost,
    )
    if json_out:
        print(orjson.dumps(report, default=str).decode())
    else:
        render(report)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the store (CHURNWATCH_DB_URL) to the newest schema revision (Alembic)."""
    import sqlalchemy as sa

    from churnwatch import store

    engine = common.store_engine(upgrade=False)  # checks the URL first
    shown = engine.url.render_as_string(hide_password=True)
    try:
        store.upgrade(engine)
        with engine.connect() as conn:
            revision = store.schema_revision(conn)
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc  # the driver's own message, when there is one
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        # a Failure, not an Exit: --verbose shows the traceback; the hint of its kind
        hint = explain(exc).hint
        raise Failure(f"cannot upgrade {shown}: {first}", Code.UNAVAILABLE, hint) from exc
    finally:
        engine.dispose()
    typer.echo(f"{shown} is at schema revision {revision}")


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None,
        typer.Option(min=1, help="Partitions per topic (default: CHURNWATCH_PARTITIONS)."),
    ] = None,
    replication_factor: Annotated[
        int | None,
        typer.Option(
            min=1, help="Replicas per partition (default: CHURNWATCH_REPLICATION_FACTOR)."
        ),
    ] = None,
) -> None:
    """Create the missing topics on CHURNWATCH_BROKER; `customers` is compacted."""
    from dataclasses import replace

    from churnwatch.topics import ALL_TOPICS, TopicLayoutError, ensure_topics_for

    settings = common.settings()
    broker = settings.broker
    if broker is None:
        raise typer.BadParameter("set CHURNWATCH_BROKER to the cluster to create topics on")
    try:
        settings = replace(
            settings,
            partitions=partitions or settings.partitions,
            replication_factor=replication_factor or settings.replication_factor,
        )
        created = ensure_topics_for(settings, broker)
    except (TopicLayoutError, ValueError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    for name in ALL_TOPICS:
        state = "created" if name in created else "exists"
        typer.echo(f"{state:>8}  {name}")
    typer.echo(
        f"{len(created)} created, {settings.partitions} partitions each, "
        f"replication factor {settings.replication_factor}"
    )


@dashboard_app.command("export")
def dashboard_export(
    out: Annotated[
        Path, typer.Option(help="Folder for the JSON files (one per dashboard).")
    ] = Path("deploy/grafana/dashboards"),
) -> None:
    """Write every dashboard's JSON model, as Grafana's file provisioning loads it."""
    from churnwatch.dashboards.push import export

    try:
        for path in export(out):
            typer.echo(f"wrote {path}")
    except OSError as exc:
        raise Failure(
            f"cannot write the dashboards to {out}: {exc.strerror or exc}",
            Code.UNAVAILABLE,
            hint="give --out a folder you can write to",
        ) from exc


@dashboard_app.command("push")
def dashboard_push(
    url: Annotated[str, typer.Option(help="Grafana's URL, e.g. http://localhost:3000.")],
    token: Annotated[
        str | None,
        typer.Option(envvar="GRAFANA_TOKEN", help="Service account token (or GRAFANA_TOKEN)."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(envvar="GRAFANA_TOKEN_FILE", help="A file holding the token (a secret)."),
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            help="Grafana's read-only login to the store's PostgreSQL, as Grafana's server "
            "reaches it. The store's own login (CHURNWATCH_DB_URL) is refused."
        ),
    ] = None,
    db_url_file: Annotated[
        Path | None, typer.Option(help="A file holding that URL (a secret).")
    ] = None,
    prometheus_url: Annotated[
        str, typer.Option(help="Prometheus as Grafana's server reaches it.")
    ] = "http://prometheus:9090",
) -> None:
    """Create or update the data sources, the folder and every dashboard in a Grafana."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException

    from churnwatch.dashboards.push import DataSources, push, refuse_writers
    from churnwatch.settings import with_sslmode

    settings = common.settings()
    token = common.secret(token, token_file, "--token")
    reader = common.secret(db_url, db_url_file, "--db-url")
    if reader is None:
        raise typer.BadParameter("give Grafana's read-only login with --db-url or --db-url-file")
    sources = DataSources(with_sslmode(reader, settings.db_sslmode), prometheus_url)
    try:
        sources.definitions()
        typer.echo(refuse_writers(sources.db_url, settings.db_url))
        api = GrafanaApi.from_url(url, credential=token)
        for line in push(api, sources):
            typer.echo(line)
    except ValueError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    except (GrafanaException, OSError) as exc:
        typer.secho(f"error: could not upload to Grafana at {url}: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None
