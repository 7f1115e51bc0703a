"""The live alerts page in headless Chromium, against the real worker, broker and store.

Chromium is Debian's (``make test`` installs it); Playwright drives it without
downloading a browser of its own. The screenshot is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from churnwatch import store
from churnwatch.features.state import KEEP_DAYS
from churnwatch.settings import Settings
from churnwatch.sim.broker import EmbeddedBroker, free_port
from churnwatch.sim.demo import worker_process
from churnwatch.sim.producing import produce
from churnwatch.sim.simulator import Simulation, customers_for, records
from churnwatch.topics import CHURN_ALERTS, ensure_topics
from tests.kafka_helpers import TEST_TOKEN, read_topic, values, wait_for
from tests.reference import REFERENCE

pytestmark = pytest.mark.kafka
ARTIFACTS = Path(os.environ.get("CHURNWATCH_TEST_ARTIFACTS", "test-artifacts"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: the flags this machine's Chromium needs headless (no sandbox as root, no network chatter)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TEST_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def _metric(text: str, name: str) -> float:
    """The sum of every sample of ``name`` in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def playwright_browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is required under CI=true ({CHROMIUM}); `make test` installs it")
        pytest.skip("Chromium is not installed; `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_new_alerts_appear_live_and_can_be_acknowledged(
    kafka_broker: EmbeddedBroker, playwright_browser, tmp_path: Path
) -> None:
    now = REFERENCE
    sim = Simulation(customers_for(4000, 365), now - timedelta(days=365), now, seed=23)
    recs = list(records(sim, limit=4000, bad_share=0.0))
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store.make_engine(db_url)
    store.upgrade(engine)
    ensure_topics(kafka_broker.bootstrap, 4)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        broker=kafka_broker.bootstrap,
        db_url=db_url,
        partitions=4,
        web_port=port,
        web_token=TEST_TOKEN,
        allowed_lateness_s=KEEP_DAYS * 86400.0,
    )
    log = tmp_path / "worker.log"

    def alerts() -> int:
        return store.count_rows(engine, store.alerts)

    with worker_process(settings, kafka_broker.bootstrap, log):
        produce(recs[:2000], kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= 2000, "first half", log)
        wait_for(lambda: alerts() > 0, "a first alert", log)

        page = playwright_browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"{base}/login?token={TEST_TOKEN}")  # the cookie, then the page
        page.wait_for_selector("#status.live")
        shown_before = page.locator("tr.alert").count()
        assert shown_before == min(alerts(), 500)

        # new events, no reload: their alerts are pushed to the open page
        produce(recs[2000:], kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= 4000, "second half", log)
        page.wait_for_selector("tr.alert.fresh", timeout=30_000)
        wait_for(
            lambda: page.locator("tr.alert").count() == alerts(), "every alert on the page", log
        )
        assert page.url == f"{base}/alerts"  # never reloaded

        # every alert carries its value at risk: on the topic, in the table, on the page,
        # and the page ranks by it (then by when raised), fresh alerts in their place
        with engine.connect() as conn:
            stored = {
                r.alert_id: r
                for r in conn.execute(
                    sa.select(
                        store.alerts.c.alert_id,
                        store.alerts.c.score,
                        store.alerts.c.clv,
                        store.alerts.c.value_at_risk,
                        store.alerts.c.created_at,
                    )
                )
            }
        published = {
            a["alert_id"]: a
            for a in values(read_topic(kafka_broker.bootstrap, CHURN_ALERTS, len(stored)))
        }
        assert published.keys() == stored.keys()
        for alert_id, row in stored.items():
            assert row.value_at_risk == round(row.score * row.clv, 2)
            assert published[alert_id]["value_at_risk"] == row.value_at_risk
        shown_ids = [tr.get_attribute("data-alert-id") for tr in page.locator("tr.alert").all()]
        ranked = sorted(
            stored, key=lambda i: (-stored[i].value_at_risk, -stored[i].created_at.timestamp())
        )
        assert [stored[i].value_at_risk for i in shown_ids] == [
            stored[i].value_at_risk for i in ranked
        ]
        shown_values = page.locator("tr.alert td.var").all_inner_texts()
        assert shown_values == [f"{stored[i].value_at_risk:.2f}" for i in shown_ids]
        assert len(set(shown_values)) > 10  # a ranking, not a constant
        api = orjson.loads(_get(f"{base}/api/alerts?limit=1000"))
        api_values = [a["value_at_risk"] for a in api]
        assert api_values == sorted(api_values, reverse=True)
        assert len(api) == min(len(stored), 1000)

        fresh = page.locator("tr.alert.fresh").first
        alert_id = fresh.get_attribute("data-alert-id")
        fresh.locator("button.ack").click()
        row = page.locator(f'tr[data-alert-id="{alert_id}"]')
        row.locator("td.status", has_text="acknowledged").wait_for()
        assert row.locator("button.ack").is_disabled()
        with engine.connect() as conn:
            acked = conn.execute(
                sa.select(store.alerts.c.acknowledged_at, store.alerts.c.acknowledged_by).where(
                    store.alerts.c.alert_id == alert_id
                )
            ).one()
        assert acked.acknowledged_at is not None and acked.acknowledged_by == "operator"

        # the customer's features and the alert's reason codes
        row.click()
        page.locator("aside h2", has_text="Features").wait_for()
        assert page.locator("aside dt", has_text="recency_days").count() == 1
        assert page.locator("aside h2", has_text="Reason codes").count() == 1
        # the alert's and the customer's value at risk
        assert page.locator("aside dt", has_text="value at risk").count() == 2

        # filters apply without a reload, and are kept in the address
        page.select_option("#tier", "high")
        tiers = page.locator("tr.alert td.tier").all_inner_texts()
        assert set(tiers) <= {"high"}
        with engine.connect() as conn:
            high = conn.execute(
                sa.select(sa.func.count()).where(store.alerts.c.value_tier == "high")
            ).scalar_one()
        assert len(tiers) == high
        assert page.url.endswith("?tier=high")
        page.select_option("#tier", "")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-page.png"))
        page.close()

        # the metrics count what the store holds
        metrics = _get(f"{base}/metrics").decode()
        assert _metric(metrics, "churnwatch_events_stored_total") == 4000
        assert _metric(metrics, "churnwatch_alerts_total") == alerts()
        assert _metric(metrics, "churnwatch_dead_letters_total") == 0
        assert "churnwatch_scoring_seconds_bucket" in metrics
