"""The retention worklist in headless Chromium, against the real worker, broker and store.

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
from playwright.sync_api import TimeoutError as PlaywrightTimeout

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


def _open_cases(engine: sa.Engine, **where: str) -> list[sa.Row]:
    """Each open case's latest alert (the only one of its case not ended), as the store has it."""
    a = store.alerts
    query = sa.select(a.c.alert_id, a.c.case_id, a.c.customer_id, a.c.value_at_risk, a.c.ts)
    query = query.where(a.c.ended_at.is_(None), *(a.c[k] == v for k, v in where.items()))
    with engine.connect() as conn:
        return list(conn.execute(query))


def _wider_than_the_window(page) -> list[str]:
    """The page's parts that scroll sideways (none, on a page that fits)."""
    return page.evaluate(
        "[document.documentElement, ...document.querySelectorAll('main > section, aside')]"
        ".filter(e => e.scrollWidth > Math.min(e.clientWidth, window.innerWidth) + 1)"
        ".map(e => `${e.tagName}: ${e.scrollWidth} > ${e.clientWidth}`)"
    )


def test_the_worklist_shows_one_open_case_per_customer_live(
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

    def shown() -> list[str]:
        return [tr.get_attribute("data-case-id") or "" for tr in page.locator("tr.case").all()]

    with worker_process(settings, kafka_broker.bootstrap, log):
        produce(recs[:2000], kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= 2000, "first half", log)
        wait_for(lambda: alerts() > 0, "a first alert", log)

        page = playwright_browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/login?token={TEST_TOKEN}")  # the cookie, then the page
        page.wait_for_selector("#status.live")
        assert page.locator("#empty").inner_text() != "Loading the cases…"

        # new events, no reload: their cases come to the open page
        produce(recs[2000:], kafka_broker.bootstrap)
        wait_for(lambda: store.count_rows(engine, store.events) >= 4000, "second half", log)
        page.wait_for_selector("tr.case.fresh", timeout=30_000)
        wait_for(
            lambda: sorted(shown()) == sorted(r.case_id for r in _open_cases(engine)),
            "exactly the open cases on the page",
            log,
        )
        assert page.url == f"{base}/alerts"  # never reloaded

        # one row per customer, open cases only, ranked by value at risk
        opened = {r.case_id: r for r in _open_cases(engine)}
        customers = page.locator("tr.case td.customer").all_inner_texts()
        assert len(customers) == len(set(customers)) == len(opened)
        assert alerts() > len(opened)  # closed and escalated alerts are not rows
        at_risk = [opened[c].value_at_risk for c in shown()]
        assert at_risk == sorted(at_risk, reverse=True) and len(set(at_risk)) >= 5
        # in the currency the worker is told (CHURNWATCH_CURRENCY, EUR by default)
        texts = page.locator("tr.case td.var").all_inner_texts()
        assert texts == [f"{v:.2f} EUR" for v in at_risk]
        api = orjson.loads(_get(f"{base}/api/cases?limit=1000"))
        assert [c["case_id"] for c in api["cases"]] == shown()
        assert api["counts"]["status"]["open"] == len(opened)
        assert page.locator("#status-filter option[value=open]").inner_text() == (
            f"open ({len(opened)})"
        )
        assert _wider_than_the_window(page) == []
        # every alert carries its case and value at risk, on the topic as in the store
        with engine.connect() as conn:
            stored = {
                r.alert_id: r
                for r in conn.execute(
                    sa.select(
                        store.alerts.c.alert_id,
                        store.alerts.c.case_id,
                        store.alerts.c.score,
                        store.alerts.c.clv,
                        store.alerts.c.value_at_risk,
                    )
                )
            }
        published = {
            a["alert_id"]: a
            for a in values(read_topic(kafka_broker.bootstrap, CHURN_ALERTS, len(stored)))
        }
        assert published.keys() == stored.keys()
        for alert_id, stored_row in stored.items():
            assert stored_row.value_at_risk == round(stored_row.score * stored_row.clv, 2)
            assert published[alert_id]["value_at_risk"] == stored_row.value_at_risk
            assert published[alert_id]["case_id"] == stored_row.case_id

        # acknowledge the first case
        first = page.locator("tr.case").first
        case_id = first.get_attribute("data-case-id")
        first.locator("button.ack").click()
        row = page.locator(f'tr[data-case-id="{case_id}"]')
        row.locator("td.status", has_text="acknowledged").wait_for()
        assert row.locator("button.ack").is_disabled()
        with engine.connect() as conn:
            acked = conn.execute(
                sa.select(store.alerts.c.acknowledged_by).where(
                    store.alerts.c.alert_id == opened[case_id].alert_id
                )
            ).scalar_one()
        assert acked == "operator"

        # the panel, from the keyboard: the reason in words, the chart, the timeline, the task
        # (a live update may redraw the table between the focus and the key: then again)
        for _ in range(5):
            row.focus()
            page.keyboard.press("Enter")
            try:
                page.locator("aside h2", has_text="Recent events").wait_for(timeout=6000)
                break
            except PlaywrightTimeout:
                continue
        page.locator("aside h2", has_text="Recent events").wait_for()
        assert page.locator("aside p.reason-words").count() == 1
        assert page.locator("aside svg.chart circle").count() >= 1
        assert page.locator("aside ol.timeline li").count() == min(
            20, sum(1 for r in recs if r.key == opened[case_id].customer_id.encode())
        )
        assert page.locator("aside dt", has_text="opened (event time)").count() == 1
        assert page.locator("aside dt", has_text="(wall time)").count() == 2
        assert page.locator("aside h2", has_text="Win-back task").count() == 1
        assert page.locator("aside dt", has_text="region").count() == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "live-page.png"))
        # assign the case from the panel; the owner filter then finds it
        page.fill("aside form.assign input", "ann")
        page.click("aside form.assign button")
        wait_for(
            lambda: page.locator("#owner option[value=ann]").count() == 1, "ann as an owner", log
        )
        page.select_option("#owner", "ann")
        wait_for(lambda: shown() == [case_id], "ann's one case", log)
        with engine.connect() as conn:
            owner = conn.execute(
                sa.select(store.case_owners.c.owner, store.case_owners.c.assigned_by)
            ).one()
        assert tuple(owner) == ("ann", "operator")
        assert page.url.endswith("?owner=ann")
        page.select_option("#owner", "")

        # filters apply without a reload, are kept in the address, and agree with the store
        page.select_option("#tier", "high")
        high = {r.case_id for r in _open_cases(engine, value_tier="high")}
        wait_for(lambda: set(shown()) == high, "the open high-tier cases", log)
        assert set(page.locator("tr.case td.tier").all_inner_texts()) <= {"high"}
        assert page.url.endswith("?tier=high")
        page.select_option("#tier", "")
        # and by segment: the simulated profiles carry a region
        with engine.connect() as conn:
            north = {
                r.case_id
                for r in conn.execute(
                    sa.select(store.alerts.c.case_id, store.alerts.c.segments).where(
                        store.alerts.c.ended_at.is_(None)
                    )
                )
                if (r.segments or {}).get("region") == "north"
            }
        assert north  # the test needs some
        page.select_option("#segment", "region:north")
        wait_for(lambda: set(shown()) == north, "the open cases in the north", log)
        assert page.url.endswith("?region=north")
        page.select_option("#segment", "")
        page.select_option("#status-filter", "all")
        with engine.connect() as conn:
            every = conn.execute(
                sa.select(sa.func.count(sa.distinct(store.alerts.c.case_id)))
            ).scalar_one()
        wait_for(lambda: len(shown()) == min(every, 500), "every case", log)
        customer = customers[0]
        page.select_option("#status-filter", "open")
        page.fill("#search", customer)
        wait_for(
            lambda: page.locator("tr.case td.customer").all_inner_texts() == [customer],
            "the searched customer",
            log,
        )
        page.fill("#search", "")
        wait_for(
            lambda: sorted(shown()) == sorted(r.case_id for r in _open_cases(engine)),
            "the open cases again",
            log,
        )

        # a phone's width: no horizontal scroll, the panel under the list
        page.set_viewport_size({"width": 420, "height": 900})
        assert _wider_than_the_window(page) == []
        page.screenshot(path=str(ARTIFACTS / "live-page-420.png"), full_page=False)
        page.close()

        # the metrics count what the store holds
        metrics = _get(f"{base}/metrics").decode()
        assert _metric(metrics, "churnwatch_events_stored_total") == 4000
        assert _metric(metrics, "churnwatch_alerts_total") == alerts()
        assert _metric(metrics, "churnwatch_dead_letters_total") == 0
        # exposed, and a share of what was counted (the idle rule's share varies by run)
        assert "\nchurnwatch_order_waited_total " in metrics
        assert 0 <= _metric(metrics, "churnwatch_order_waited_total") <= 4000
        assert "churnwatch_scoring_seconds_bucket" in metrics
