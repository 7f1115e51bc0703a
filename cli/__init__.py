"""The ``churnwatch`` command line: a thin Typer shell that parses, calls and prints."""

from churnwatch.cli.app import app, main

__all__ = ["app", "main"]
