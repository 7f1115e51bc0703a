"""``churnwatch dashboard export`` and ``push``: the dashboards as files, or into a Grafana.

``push`` talks to Grafana's HTTP API through grafana-client: it creates or
updates the two data sources (by uid, so the dashboards' references hold),
makes sure the ``churnwatch`` folder exists, and saves every dashboard with
``overwrite``. Running it twice leaves Grafana as once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from churnwatch import store
from churnwatch.dashboards.build import POSTGRES, PROMETHEUS, build_all

FOLDER_UID, FOLDER_TITLE = "churnwatch", "churnwatch"


def export(folder: Path) -> list[Path]:
    """Write each dashboard's JSON model to ``folder/<uid>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, model in build_all().items():
        path = folder / f"{uid}.json"
        path.write_bytes(orjson.dumps(model, option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written


@dataclass(frozen=True)
class DataSources:
    """Where Grafana finds the store and Prometheus (as Grafana's server sees them)."""

    #: a SQLAlchemy PostgreSQL URL, e.g. ``postgresql://grafana:secret@db:5432/churnwatch``
    db_url: str
    prometheus_url: str = "http://prometheus:9090"

    def definitions(self) -> list[dict[str, Any]]:
        """The data source models Grafana's API takes."""
        url = store.parse_url(self.db_url)
        if url.backend != "postgresql":
            raise ValueError(
                f"Grafana reads the store from PostgreSQL; {url.backend} "
                "is not supported by the dashboards' SQL"
            )
        postgres = {
            "uid": POSTGRES.uid,
            "name": "churnwatch PostgreSQL",
            "type": POSTGRES.type_val,
            "access": "proxy",
            "url": f"{url.host or 'localhost'}:{url.port or 5432}",
            "user": url.username or "",
            "jsonData": {
                "database": url.database,
                "sslmode": url.query.get("sslmode", "disable"),
                "postgresVersion": 1500,
            },
            "secureJsonData": {"password": url.password or ""},
        }
        prometheus = {
            "uid": PROMETHEUS.uid,
            "name": "churnwatch Prometheus",
            "type": PROMETHEUS.type_val,
            "access": "proxy",
            "url": self.prometheus_url,
            "jsonData": {"timeInterval": "15s"},
        }
        return [postgres, prometheus]


def _missing(call: Callable[..., Any], *args: Any) -> bool:
    """Whether Grafana answers 404 to ``call(*args)``."""
    try:
        call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return True
        raise
    return False


def push(api: GrafanaApi, sources: DataSources) -> list[str]:
    """Upload data sources, the folder and every dashboard; returns what was done."""
    done = []
    for source in sources.definitions():
        uid = source["uid"]
        if _missing(api.datasource.get_datasource_by_uid, uid):
            api.datasource.create_datasource(source)
            done.append(f"created data source {uid}")
        else:
            api.datasource.update_datasource_by_uid(uid, source)
            done.append(f"updated data source {uid}")
    if _missing(api.folder.get_folder, FOLDER_UID):
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        done.append(f"created folder {FOLDER_UID}")
    for uid, model in build_all().items():
        api.dashboard.update_dashboard(
            {
                "dashboard": model,
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "churnwatch dashboard push",
            }
        )
        done.append(f"saved dashboard {uid}")
    return done


#: what a read-only login must not be able to do to any table of the store
_WRITES = "INSERT,UPDATE,DELETE,TRUNCATE"


def refuse_writers(db_url: str, owner_url: str | None) -> str:
    """Refuse a database login that can write the store; say how far it was checked.

    Grafana needs to read only, and its data source holds the password in
    Grafana's own database: the store's owner (``owner_url``, the workers' and the
    migrations' login) or any role that can write a table is refused with a
    ``ValueError``. When the store is reachable from here, the role's privileges
    are checked as well; when it is not (Grafana may reach it by another name),
    only the login's name is.
    """
    url = store.parse_url(db_url)
    if owner_url is not None:
        owner = store.parse_url(owner_url)
        if owner.backend == "postgresql" and owner.username == url.username:
            raise ValueError(
                f"{url.username!r} is the store's own login (CHURNWATCH_DB_URL): give Grafana "
                "a read-only role (deploy/postgres/initdb/10-grafana-reader.sh)"
            )
    rights = store.login_rights(db_url, _WRITES)
    if rights is None:
        return f"could not reach the store from here: checked the login {url.username!r} by name"
    superuser, writable = rights
    if superuser:
        raise ValueError(f"{url.username!r} is a superuser: give Grafana a read-only role")
    if writable:
        raise ValueError(f"{url.username!r} can write the store ({writable}): use a read-only role")
    return f"the login {url.username!r} can only read the store"
