"""TLS and SASL settings for production Kafka: validation, client arguments, Faust credentials."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import replace
from pathlib import Path

import faust
import pytest
from faust.types.auth import AuthProtocol, SASLMechanism

from churnwatch import store
from churnwatch.kafka_security import KafkaSecurity, KafkaSecurityError
from churnwatch.settings import Settings
from churnwatch.streams.app import create_app
from churnwatch.streams.credentials import faust_credentials


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A self-signed CA/client certificate and its key, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "client.pem", folder / "client.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=churnwatch-test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, cert, key


def test_plaintext_adds_nothing() -> None:
    security = KafkaSecurity()
    assert security.client_config() == {}
    assert faust_credentials(security) is None
    assert security.ssl_context() is None


def test_sasl_scram_over_tls(tls_files) -> None:
    ca, _, _ = tls_files
    security = KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        username="worker",
        password="s3cret",
        ca_file=ca,
    )
    config = security.client_config()
    context = config.pop("ssl_context")
    assert config == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "worker",
        "sasl_plain_password": "s3cret",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) == 1  # exactly the given CA, not the system's
    credentials = faust_credentials(security)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol == AuthProtocol.SASL_SSL
    assert credentials.mechanism == SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("worker", "s3cret")


def test_sasl_plain_without_tls_and_mutual_tls(tls_files) -> None:
    plain = KafkaSecurity(protocol="SASL_PLAINTEXT", username="u", password="p")
    assert plain.client_config() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    assert faust_credentials(plain).protocol == AuthProtocol.SASL_PLAINTEXT
    ca, cert, key = tls_files
    mutual = KafkaSecurity(protocol="SSL", ca_file=ca, cert_file=cert, key_file=key)
    credentials = faust_credentials(mutual)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol == AuthProtocol.SSL
    assert mutual.client_config()["security_protocol"] == "SSL"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"protocol": "TLS"}, "use one of"),
        ({"protocol": "SASL_SSL", "username": "u"}, "needs CHURNWATCH_KAFKA_USERNAME"),
        (
            {"protocol": "SASL_SSL", "username": "u", "password": "p", "sasl_mechanism": "GSSAPI"},
            "CHURNWATCH_KAFKA_SASL_MECHANISM='GSSAPI'",
        ),
        ({"username": "u", "password": "p"}, "a SASL login is set but"),
        ({"protocol": "SSL", "cert_file": Path("/etc/hostname")}, "go together"),
        ({"ca_file": Path("/etc/hostname")}, "TLS files are set but"),
        ({"protocol": "SSL", "ca_file": Path("/no/such/ca.pem")}, "not found: /no/such/ca.pem"),
    ],
)
def test_settings_that_do_not_fit_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(KafkaSecurityError, match=message):
        KafkaSecurity(**fields)


def test_from_env_reads_password_and_db_url_from_files(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "password").write_text("from-a-secret\n")
    (tmp_path / "db").write_text("postgresql+psycopg://cw:pw@db/cw\n")
    monkeypatch.setenv("CHURNWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext")
    monkeypatch.setenv("CHURNWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("CHURNWATCH_KAFKA_USERNAME", "worker")
    monkeypatch.setenv("CHURNWATCH_KAFKA_PASSWORD_FILE", str(tmp_path / "password"))
    monkeypatch.setenv("CHURNWATCH_DB_URL_FILE", str(tmp_path / "db"))
    monkeypatch.setenv("CHURNWATCH_REPLICATION_FACTOR", "3")
    settings = Settings.from_env()
    assert settings.kafka_security == KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        username="worker",
        password="from-a-secret",
    )
    assert settings.db_url == "postgresql+psycopg://cw:pw@db/cw"
    assert settings.replication_factor == 3
    # the worker child process gets the same settings back
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHURNWATCH_KAFKA_PASSWORD_FILE")
    assert Settings.from_env() == settings
    monkeypatch.setenv("CHURNWATCH_KAFKA_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"CHURNWATCH_KAFKA_PASSWORD_FILE=.*cannot read it"):
        Settings.from_env()


def test_the_worker_app_authenticates_with_them(tmp_path: Path) -> None:
    engine = store.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    settings = replace(
        Settings(web_port=0),
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="worker",
        kafka_password="pw",
    )
    app = create_app(settings, "k1:9092,k2:9092", engine)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism == SASLMechanism.SCRAM_SHA_256
    assert [str(url) for url in app.conf.broker] == ["kafka://k1:9092", "kafka://k2:9092"]
