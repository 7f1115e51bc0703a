"""How churnwatch authenticates to a production Kafka: TLS and SASL (PLAIN, SCRAM).

One :class:`KafkaSecurity`, read from the settings, gives both the Faust
worker's credentials and the keyword arguments of every kafka-python client
(producers, admin, counters), so that no client is left on plaintext by
accident.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaSecurityError(ValueError):
    """The Kafka security settings do not fit together."""


@dataclass(frozen=True)
class KafkaSecurity:
    """Protocol, SASL login and TLS files for the brokers."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: CA bundle that signed the brokers' certificates (default: the system's)
    ca_file: Path | None = None
    #: client certificate and key, for brokers that require mutual TLS
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise KafkaSecurityError(
                f"CHURNWATCH_KAFKA_SECURITY_PROTOCOL={self.protocol!r}: use one of {PROTOCOLS}"
            )
        if self.uses_sasl:
            mechanism = self.sasl_mechanism or "PLAIN"
            if mechanism not in SASL_MECHANISMS:
                raise KafkaSecurityError(
                    f"CHURNWATCH_KAFKA_SASL_MECHANISM={mechanism!r}: use one of {SASL_MECHANISMS}"
                )
            if not self.username or self.password is None:
                raise KafkaSecurityError(
                    f"{self.protocol} needs CHURNWATCH_KAFKA_USERNAME and "
                    "CHURNWATCH_KAFKA_PASSWORD (or CHURNWATCH_KAFKA_PASSWORD_FILE)"
                )
        elif self.sasl_mechanism or self.username:
            raise KafkaSecurityError(
                f"a SASL login is set but CHURNWATCH_KAFKA_SECURITY_PROTOCOL is {self.protocol}; "
                "use SASL_SSL or SASL_PLAINTEXT"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise KafkaSecurityError(
                "CHURNWATCH_KAFKA_CERT_FILE and CHURNWATCH_KAFKA_KEY_FILE go together"
            )
        tls_files = (self.ca_file, self.cert_file, self.key_file)
        if not self.uses_tls and any(tls_files):
            raise KafkaSecurityError(
                f"TLS files are set but CHURNWATCH_KAFKA_SECURITY_PROTOCOL is {self.protocol}; "
                "use SSL or SASL_SSL"
            )
        for path in tls_files:
            if path is not None and not path.is_file():
                raise KafkaSecurityError(f"Kafka TLS file not found: {path}")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (CA and client certificate loaded), or ``None``."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_config(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's producers, consumers and admin client."""
        if self.protocol == "PLAINTEXT":
            return {}
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            config["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            # kafka-python takes the SCRAM login in the ``sasl_plain_*`` arguments too
            config["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            config["sasl_plain_username"] = self.username
            config["sasl_plain_password"] = self.password
        return config
