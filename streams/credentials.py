"""Faust's broker credentials from churnwatch's Kafka security settings."""

from __future__ import annotations

import faust

from churnwatch.kafka_security import KafkaSecurity


def faust_credentials(
    security: KafkaSecurity,
) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust's ``broker_credentials`` for these settings (``None``: plaintext)."""
    if security.uses_sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            ssl_context=security.ssl_context(),
            mechanism=security.sasl_mechanism or "PLAIN",
        )
    if security.uses_tls:
        return faust.SSLCredentials(security.ssl_context())
    return None
