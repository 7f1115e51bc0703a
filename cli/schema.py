"""``churnwatch schema``: the JSON Schema of each topic's records (docs/contract.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnwatch.cli.common import app

#: where --write puts the files by default: the repository's docs/schemas/ from its root
SCHEMAS = Path("docs/schemas")


@app.command("schema")
def schema(
    topic: Annotated[
        str | None, typer.Argument(help="One topic's schema (default: every topic's).")
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Write <topic>.json per topic into --out.")
    ] = False,
    out: Annotated[Path, typer.Option(help="The folder --write writes into.")] = SCHEMAS,
) -> None:
    """Print (or write) the JSON Schema of every topic's record values, made from the code.

    Without --write: one topic's schema, or every topic's in one object.
    docs/schemas/ holds what --write makes (docs/contract.md describes the topics).
    """
    from churnwatch import contract

    if write:
        if topic is not None:
            raise typer.BadParameter("--write writes every topic's schema; give no TOPIC")
        for path in contract.write(out):
            typer.echo(f"wrote {path}")
        return
    if topic is None:
        typer.echo(contract.render(dict(contract.schemas())), nl=False)
    elif topic in contract.TOPIC_RECORDS:
        typer.echo(contract.render(contract.schema_of(topic)), nl=False)
    else:
        known = ", ".join(contract.TOPIC_RECORDS)
        raise typer.BadParameter(f"unknown topic {topic!r} (topics: {known})")
