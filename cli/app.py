"""The ``churnwatch`` command line: the root app with every command registered."""

# ruff: noqa: I001  (the import order is the order of the commands in --help)
from __future__ import annotations

import logging

from churnwatch.cli.common import app

# importing a command module registers its commands on the root app
from churnwatch.cli import running  # noqa: F401
from churnwatch.cli import history  # noqa: F401
from churnwatch.cli import admin  # noqa: F401
from churnwatch.cli import schema  # noqa: F401

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
