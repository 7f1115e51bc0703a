"""Settings from environment variables; every one is optional.

Read once into a frozen :class:`Settings` so that a worker, the CLI and the
tests all agree on one value per run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("churnwatch-data")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class Settings:
    """Run-time configuration of every churnwatch process."""

    #: ``host:port`` of a Kafka broker; ``None`` means "start the embedded one".
    broker: str | None = None
    #: SQLAlchemy URL of the event store.
    db_url: str = f"sqlite:///{DEFAULT_DATA_DIR / 'churnwatch.db'}"
    #: Partitions of every topic that churnwatch creates.
    partitions: int = 4
    #: Port of the worker's web server (0 disables it).
    web_port: int = 6066
    #: Faust application id, also the Kafka consumer group.
    app_id: str = "churnwatch"
    #: Events stamped later than now + this many seconds are rejected.
    max_future_s: float = 24 * 3600.0
    #: Largest batch the worker folds in one store transaction.
    batch_size: int = 1000
    #: Longest wait, in seconds, for a batch to fill.
    batch_within_s: float = 0.05
    #: Kafka consumer session timeout; short, so group joins and failover are quick.
    session_timeout_s: float = 2.0

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from ``CHURNWATCH_*`` environment variables."""
        return cls(
            broker=os.environ.get("CHURNWATCH_BROKER") or None,
            db_url=os.environ.get("CHURNWATCH_DB_URL") or cls.db_url,
            partitions=_env_int("CHURNWATCH_PARTITIONS", cls.partitions),
            web_port=_env_int("CHURNWATCH_WEB_PORT", cls.web_port),
            app_id=os.environ.get("CHURNWATCH_APP_ID") or cls.app_id,
            max_future_s=_env_float("CHURNWATCH_MAX_FUTURE_S", cls.max_future_s),
            batch_size=_env_int("CHURNWATCH_BATCH_SIZE", cls.batch_size),
            batch_within_s=_env_float("CHURNWATCH_BATCH_WITHIN_S", cls.batch_within_s),
            session_timeout_s=_env_float("CHURNWATCH_SESSION_TIMEOUT_S", cls.session_timeout_s),
        )
