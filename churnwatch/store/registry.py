"""The model registry: saved models, and which one is current."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from churnwatch.store.schema import models
from churnwatch.times import utcnow


def register_model(
    conn: Connection,
    version: str,
    path: str,
    card: Mapping[str, Any],
    sha256: str | None = None,
) -> None:
    """List a saved model in the registry, with its artifact's digest."""
    conn.execute(
        sa.insert(models).values(
            version=version, path=path, card=dict(card), created_at=utcnow(), sha256=sha256
        )
    )


def promote_model(conn: Connection, version: str) -> None:
    """Make ``version`` the current model."""
    done = conn.execute(
        sa.update(models).where(models.c.version == version).values(promoted_at=utcnow())
    )
    if done.rowcount != 1:
        raise LookupError(f"no model {version!r} in the registry")


def current_model(conn: Connection) -> tuple[str, str] | None:
    """``(version, path)`` of the model promoted last, or ``None``."""
    row = conn.execute(
        sa.select(models.c.version, models.c.path)
        .where(models.c.promoted_at.is_not(None))
        .order_by(models.c.promoted_at.desc())
        .limit(1)
    ).first()
    return None if row is None else (row.version, row.path)


def current_model_entry(conn: Connection) -> tuple[str, str, str | None] | None:
    """``(version, path, sha256)`` of the model promoted last, or ``None``."""
    row = conn.execute(
        sa.select(models.c.version, models.c.path, models.c.sha256)
        .where(models.c.promoted_at.is_not(None))
        .order_by(models.c.promoted_at.desc())
        .limit(1)
    ).first()
    return None if row is None else (row.version, row.path, row.sha256)
