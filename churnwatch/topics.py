"""Topic names (their records: docs/contract.md) and their creation."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kafka.partitioner.default import murmur2

from churnwatch.events import CUSTOMERS, INPUT_TOPICS

if TYPE_CHECKING:
    from churnwatch.settings import Settings

DEAD_LETTERS = "dead-letters"
CHURN_ALERTS = "churn-alerts"
WINBACK_TASKS = "winback-tasks"
WINBACK_OUTCOMES = "winback-outcomes"
#: Lifecycle stage and value tier moves of each customer.
CUSTOMER_CHANGES = "customer-changes"
#: Valid records whose Kafka key was not their customer_id, re-keyed so that a
#: customer's events all meet in one partition.
REKEYED = "churnwatch-rekeyed"

#: Every topic the worker reads or writes, apart from Faust's own.
ALL_TOPICS: tuple[str, ...] = (
    *INPUT_TOPICS,
    REKEYED,
    DEAD_LETTERS,
    CHURN_ALERTS,
    CUSTOMER_CHANGES,
    WINBACK_TASKS,
    WINBACK_OUTCOMES,
)


def partition_of(customer_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed by ``customer_id``."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


class TopicLayoutError(RuntimeError):
    """An existing topic has a partition count churnwatch cannot work with."""


class BrokerUnreachable(ConnectionError):
    """No broker answered at the bootstrap address within the connect timeout."""


#: Topics whose old records may be compacted away, keeping the newest per key.
COMPACTED = frozenset({CUSTOMERS})


def ensure_topics_for(settings: Settings, bootstrap: str) -> list[str]:
    """:func:`ensure_topics` with the partitions, replication and security of ``settings``."""
    return ensure_topics(
        bootstrap,
        settings.partitions,
        replication=settings.replication_factor,
        client=settings.kafka_security.client_config(),
        timeout_s=settings.connect_timeout_s,
    )


def ensure_topics(
    bootstrap: str,
    partitions: int,
    names: tuple[str, ...] = ALL_TOPICS,
    *,
    replication: int = 1,
    client: Mapping[str, Any] | None = None,
    timeout_s: float = 10.0,
) -> list[str]:
    """Create the missing topics with ``partitions`` partitions each; return those created.

    Input topics, the re-key topic and the state changelog must be
    co-partitioned (same count, same key hashing) so that one worker holds all
    of a customer's events; a mismatch is reported rather than worked around.
    Profiles (``customers``) are compacted: only each customer's newest counts.
    ``client`` holds kafka-python's security arguments. A broker that does not
    answer within ``timeout_s`` raises :class:`BrokerUnreachable`.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

    try:
        # kafka-python waits 30 s for a first broker by default; bound it
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=int(timeout_s * 1000),
            **(client or {}),
        )
    except KafkaTimeoutError:
        raise BrokerUnreachable(
            f"no Kafka broker answered at {bootstrap} within {timeout_s:g} s"
        ) from None
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                n,
                partitions,
                replication,
                topic_configs={"cleanup.policy": "compact"} if n in COMPACTED else {},
            )
            for n in names
            if n not in existing
        ]
        if missing:
            # another process may create them at the same moment
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        # an empty list would describe every topic of the cluster
        co_partitioned = [n for n in (*INPUT_TOPICS, REKEYED) if n in names and n in existing]
        for info in admin.describe_topics(co_partitioned) if co_partitioned else ():
            found = len(info["partitions"])
            if found != partitions:
                name = info.get("name") or info.get("topic")
                raise TopicLayoutError(
                    f"topic {name} has {found} partitions but churnwatch is set to "
                    f"{partitions} (CHURNWATCH_PARTITIONS); input topics must be co-partitioned"
                )
    finally:
        admin.close()
    return [topic.name for topic in missing]
