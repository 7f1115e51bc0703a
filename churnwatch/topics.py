"""Topic names (DESIGN.md, "Topics and records") and their creation."""

from __future__ import annotations

import contextlib

from kafka.partitioner.default import murmur2

from churnwatch.events import INPUT_TOPICS

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


def ensure_topics(bootstrap: str, partitions: int, names: tuple[str, ...] = ALL_TOPICS) -> None:
    """Create the missing topics with ``partitions`` partitions each.

    Input topics, the re-key topic and the state changelog must be
    co-partitioned (same count, same key hashing) so that one worker holds all
    of a customer's events; a mismatch is reported rather than worked around.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
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
