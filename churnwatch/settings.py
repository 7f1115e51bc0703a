"""Settings from environment variables; every one is optional.

Read once into a frozen :class:`Settings` so that a worker, the CLI and the
tests all agree on one value per run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from churnwatch.features.state import KEEP_DAYS
from churnwatch.kafka_security import KafkaSecurity
from churnwatch.web_access import Credential, parse_credentials

DEFAULT_DATA_DIR = Path("churnwatch-data")
#: the event loops a worker can run on
LOOPS = ("uvloop", "asyncio")
_N = TypeVar("_N", int, float)


def _env_number(name: str, default: _N, kind: type[_N]) -> _N:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None


def _env_path(name: str) -> Path | None:
    raw = os.environ.get(name)
    return Path(raw) if raw else None


def _env_flag(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not true or false")


def with_sslmode(url: str, sslmode: str | None) -> str:
    """``url`` with ``sslmode`` set, for a PostgreSQL URL that does not set one."""
    if not sslmode:
        return url
    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or "sslmode" in parsed.query:
        return url
    return parsed.update_query_dict({"sslmode": sslmode}).render_as_string(hide_password=False)


def _masked(url: str) -> str:
    from sqlalchemy import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show nothing of it
        return "***"


def _env_secret(name: str) -> str | None:
    """``NAME``, or the contents of the file ``NAME_FILE`` names (Docker/Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{name}_FILE={path!r}: cannot read it ({exc.strerror})") from None
    return os.environ.get(name) or None


@dataclass(frozen=True)
class Settings:
    """Run-time configuration of every churnwatch process."""

    #: ``host:port`` of a Kafka broker; ``None`` means "start the embedded one".
    broker: str | None = None
    #: SQLAlchemy URL of the event store.
    db_url: str = field(default=f"sqlite:///{DEFAULT_DATA_DIR / 'churnwatch.db'}", repr=False)
    #: PostgreSQL ``sslmode`` (``require``, ``verify-full`` …) when the URL sets none.
    db_sslmode: str | None = None
    #: Partitions of every topic that churnwatch creates.
    partitions: int = 4
    #: Replication factor of the topics churnwatch creates (3 on a production cluster).
    replication_factor: int = 1
    #: Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    kafka_security_protocol: str = "PLAINTEXT"
    #: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (with a SASL protocol).
    kafka_sasl_mechanism: str | None = None
    kafka_username: str | None = None
    kafka_password: str | None = field(default=None, repr=False)
    #: CA bundle, client certificate and key for TLS (with SSL or SASL_SSL).
    kafka_ca_file: Path | None = None
    kafka_cert_file: Path | None = None
    kafka_key_file: Path | None = None
    #: Port of the worker's web server (0 disables it).
    web_port: int = 6066
    #: Address the web server binds: loopback by default, ``0.0.0.0`` in a container.
    web_host: str = "127.0.0.1"
    #: The web token that may read and act (``docs/security.md``).
    web_token: str | None = field(default=None, repr=False)
    #: More web tokens: ``name:role:token`` entries, comma- or line-separated.
    web_tokens: str | None = field(default=None, repr=False)
    #: ``host`` or ``host:port`` names a browser may use for the worker (comma-separated).
    web_allowed_hosts: str | None = None
    #: ``/metrics`` without a token (Prometheus convention).
    web_metrics_open: bool = True
    #: A header an authenticating proxy sets to the user's name (with a valid token).
    web_user_header: str | None = None
    #: The only folder the worker loads model artifacts from.
    models_dir: Path = DEFAULT_DATA_DIR / "models"
    #: Faust application id, also the Kafka consumer group.
    app_id: str = "churnwatch"
    #: Events stamped later than now + this many seconds are rejected.
    max_future_s: float = 24 * 3600.0
    #: Most customer records a worker keeps in memory; the others are read from the store.
    cache_customers: int = 100_000
    #: Largest batch the worker folds in one store transaction.
    batch_size: int = 1000
    #: Longest wait, in seconds, for a batch to fill.
    batch_within_s: float = 0.05
    #: Kafka consumer session timeout; short, so group joins and failover are quick.
    session_timeout_s: float = 2.0
    #: Seconds a send to Kafka may take before it fails (and stays in the outbox).
    send_timeout_s: float = 30.0
    #: Longest wait, in seconds, for a first connection to the broker or the store: a
    #: command whose broker or database is unreachable fails after it, in one line.
    connect_timeout_s: float = 10.0
    #: How far (seconds) an event may lag its customer's newest one and still count.
    allowed_lateness_s: float = 7 * 86400.0
    #: Wall seconds a quiet input topic may hold back the others' event-time order
    #: (0: count each batch as it comes, sorted within itself only).
    order_idle_s: float = 1.0
    #: Most records held for event-time order; past it the oldest go out regardless.
    order_max_held: int = 100_000
    #: Longest wait (ms) of the worker's fetches that find nothing (faust-streaming fixes 1,500).
    fetch_max_wait_ms: int = 40
    #: The worker's event loop: ``uvloop`` or ``asyncio``.
    loop: str = "uvloop"
    #: A model artifact folder to score with always; ``None``: the promoted model.
    model: Path | None = None
    #: How often (wall seconds) the worker asks the registry for a newly promoted model.
    model_check_s: float = 5.0
    #: Alert policy file (TOML); ``None``: the shipped ``alerts/policy.toml``.
    policy_file: Path | None = None
    #: Win-back playbook file (TOML); ``None``: the shipped ``alerts/playbook.toml``.
    playbook_file: Path | None = None
    #: ``/health`` answers 503 when records wait this many seconds with no batch committed.
    health_stall_s: float = 60.0
    #: Longest wait (seconds) for the worker to stop on SIGTERM before it exits regardless.
    shutdown_timeout_s: float = 10.0
    #: Store and fold batches in a child process of the worker's, on a core of its own
    #: (``false``: in a thread of the worker's process, sharing its interpreter lock).
    fold_process: bool = True
    #: Allocations between collections of the youngest generation of Python's cyclic
    #: garbage collector in the worker's processes, whose start-up objects are frozen out
    #: of every collection (0: the collector as Python sets it).
    gc_threshold: int = 50_000
    #: Longest a batch may take in the fold process before it is killed and restarted.
    fold_timeout_s: float = 300.0
    #: Seconds every reading of the clock is moved by (negative: the past), to judge
    #: data of another day as on that day; 0: the wall clock.
    clock_offset_s: float = 0.0
    #: The currency the amounts are in, shown beside every amount on the worklist
    #: (ISO 4217; churnwatch sums amounts as they come and converts nothing).
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ValueError(f"currency must be an ISO 4217 code, e.g. EUR (got {self.currency!r})")
        if self.partitions < 1 or self.replication_factor < 1:
            raise ValueError("partitions and replication factor must be at least 1")
        if not 0 < self.connect_timeout_s <= 3600:
            raise ValueError(
                f"connect timeout must lie between 0 and 3600 s (got {self.connect_timeout_s} s)"
            )
        if self.fold_timeout_s <= 0:
            raise ValueError(f"fold timeout must be positive (got {self.fold_timeout_s} s)")
        if self.gc_threshold != 0 and not 100 <= self.gc_threshold <= 10_000_000:
            raise ValueError(
                "the gc threshold must be 0 (Python's own) or lie between 100 and 10000000 "
                f"(got {self.gc_threshold})"
            )
        if self.cache_customers < 1:
            raise ValueError("the customer cache must hold at least 1 customer")
        if self.order_idle_s < 0 or self.order_max_held < 1:
            raise ValueError("order idle time must be at least 0 and order max held at least 1")
        if not 1 <= self.fetch_max_wait_ms <= 60_000:
            raise ValueError(
                f"fetch max wait must lie between 1 and 60000 ms (got {self.fetch_max_wait_ms})"
            )
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {', '.join(LOOPS)} (got {self.loop!r})")
        # refuse Kafka security and web token settings that do not fit together, at start-up
        _ = self.kafka_security, self.web_credentials
        if not 0 <= self.allowed_lateness_s <= KEEP_DAYS * 86400:
            raise ValueError(
                f"allowed lateness must lie between 0 and {KEEP_DAYS} days "
                f"(got {self.allowed_lateness_s} s)"
            )

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The TLS and SASL settings every Kafka client of this process uses."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=self.kafka_password,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
        )

    @property
    def web_credentials(self) -> tuple[Credential, ...]:
        """The tokens that may use the worker's web views."""
        return parse_credentials(self.web_token, self.web_tokens)

    def __repr__(self) -> str:
        # the dataclass repr, but with the store URL's password masked
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"Settings(db_url={_masked(self.db_url)!r}, {shown})"

    def to_env(self) -> dict[str, str]:
        """The ``CHURNWATCH_*`` variables that make :meth:`from_env` return these settings."""
        return {
            f"CHURNWATCH_{f.name.upper()}": str(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from ``CHURNWATCH_*`` environment variables."""
        sslmode = os.environ.get("CHURNWATCH_DB_SSLMODE") or None
        return cls(
            broker=os.environ.get("CHURNWATCH_BROKER") or None,
            db_url=with_sslmode(_env_secret("CHURNWATCH_DB_URL") or cls.db_url, sslmode),
            db_sslmode=sslmode,
            partitions=_env_number("CHURNWATCH_PARTITIONS", cls.partitions, int),
            replication_factor=_env_number(
                "CHURNWATCH_REPLICATION_FACTOR", cls.replication_factor, int
            ),
            kafka_security_protocol=(
                os.environ.get("CHURNWATCH_KAFKA_SECURITY_PROTOCOL") or cls.kafka_security_protocol
            ).upper(),
            kafka_sasl_mechanism=os.environ.get("CHURNWATCH_KAFKA_SASL_MECHANISM") or None,
            kafka_username=os.environ.get("CHURNWATCH_KAFKA_USERNAME") or None,
            kafka_password=_env_secret("CHURNWATCH_KAFKA_PASSWORD"),
            kafka_ca_file=_env_path("CHURNWATCH_KAFKA_CA_FILE"),
            kafka_cert_file=_env_path("CHURNWATCH_KAFKA_CERT_FILE"),
            kafka_key_file=_env_path("CHURNWATCH_KAFKA_KEY_FILE"),
            web_port=_env_number("CHURNWATCH_WEB_PORT", cls.web_port, int),
            web_host=os.environ.get("CHURNWATCH_WEB_HOST") or cls.web_host,
            web_token=_env_secret("CHURNWATCH_WEB_TOKEN"),
            web_tokens=_env_secret("CHURNWATCH_WEB_TOKENS"),
            web_allowed_hosts=os.environ.get("CHURNWATCH_WEB_ALLOWED_HOSTS") or None,
            web_metrics_open=_env_flag("CHURNWATCH_WEB_METRICS_OPEN", cls.web_metrics_open),
            web_user_header=os.environ.get("CHURNWATCH_WEB_USER_HEADER") or None,
            models_dir=_env_path("CHURNWATCH_MODELS_DIR") or cls.models_dir,
            app_id=os.environ.get("CHURNWATCH_APP_ID") or cls.app_id,
            max_future_s=_env_number("CHURNWATCH_MAX_FUTURE_S", cls.max_future_s, float),
            cache_customers=_env_number("CHURNWATCH_CACHE_CUSTOMERS", cls.cache_customers, int),
            batch_size=_env_number("CHURNWATCH_BATCH_SIZE", cls.batch_size, int),
            batch_within_s=_env_number("CHURNWATCH_BATCH_WITHIN_S", cls.batch_within_s, float),
            session_timeout_s=_env_number(
                "CHURNWATCH_SESSION_TIMEOUT_S", cls.session_timeout_s, float
            ),
            send_timeout_s=_env_number("CHURNWATCH_SEND_TIMEOUT_S", cls.send_timeout_s, float),
            connect_timeout_s=_env_number(
                "CHURNWATCH_CONNECT_TIMEOUT_S", cls.connect_timeout_s, float
            ),
            allowed_lateness_s=_env_number(
                "CHURNWATCH_ALLOWED_LATENESS_S", cls.allowed_lateness_s, float
            ),
            order_idle_s=_env_number("CHURNWATCH_ORDER_IDLE_S", cls.order_idle_s, float),
            order_max_held=_env_number("CHURNWATCH_ORDER_MAX_HELD", cls.order_max_held, int),
            fetch_max_wait_ms=_env_number(
                "CHURNWATCH_FETCH_MAX_WAIT_MS", cls.fetch_max_wait_ms, int
            ),
            loop=(os.environ.get("CHURNWATCH_LOOP") or cls.loop).strip().lower(),
            model=_env_path("CHURNWATCH_MODEL"),
            model_check_s=_env_number("CHURNWATCH_MODEL_CHECK_S", cls.model_check_s, float),
            policy_file=_env_path("CHURNWATCH_POLICY_FILE"),
            playbook_file=_env_path("CHURNWATCH_PLAYBOOK_FILE"),
            health_stall_s=_env_number("CHURNWATCH_HEALTH_STALL_S", cls.health_stall_s, float),
            shutdown_timeout_s=_env_number(
                "CHURNWATCH_SHUTDOWN_TIMEOUT_S", cls.shutdown_timeout_s, float
            ),
            fold_process=_env_flag("CHURNWATCH_FOLD_PROCESS", cls.fold_process),
            gc_threshold=_env_number("CHURNWATCH_GC_THRESHOLD", cls.gc_threshold, int),
            fold_timeout_s=_env_number("CHURNWATCH_FOLD_TIMEOUT_S", cls.fold_timeout_s, float),
            clock_offset_s=_env_number("CHURNWATCH_CLOCK_OFFSET_S", cls.clock_offset_s, float),
            currency=os.environ.get("CHURNWATCH_CURRENCY") or cls.currency,
        )
