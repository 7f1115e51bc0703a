"""``churnwatch winback report``: the win-back views, the uplift against the control
groups, and the action to adopt per reason and tier; read and printed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from churnwatch import store
from churnwatch.alerts.config import HOLDOUT, Playbook, Step
from churnwatch.store import Connection, Engine
from churnwatch.times import aware
from churnwatch.winback.uplift import Case, Cell, estimate, recommend, shrunk

VIEWS = store.VIEWS
#: the groupings of the uplift tables: per action over every reason, then within each
#: reason per action, per tier and per contact delay
UPLIFT_BY = {
    "uplift_per_action": ("action",),
    "uplift_by_action": ("reason", "action"),
    "uplift_by_tier": ("reason", "action", "tier"),
    "uplift_by_delay": ("reason", "action", "delay"),
}


def _plain(value: Any) -> Any:
    # PostgreSQL returns NUMERIC (Decimal) for the ratios and means; SQLite floats
    if isinstance(value, float | Decimal):
        return round(float(value), 4)
    return value


def fetch(
    engine: Engine,
    *,
    min_customers: int = 30,
    playbook: Playbook | None = None,
    contact_cost: float = 0.0,
    return_value: float = 1.0,
) -> dict[str, Any]:
    """Every row of each win-back view (numbers rounded to 4 places), the uplift tables
    and, per reason and tier, the action to adopt (see :func:`uplift_tables`)."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for view in VIEWS:
            rows = store.view_rows(conn, view)
            out[view] = [{k: _plain(v) for k, v in row.items()} for row in rows]
        cases = settled_cases(conn)
    tables = uplift_tables(cases, min_customers, playbook, contact_cost, return_value)
    return {**out, **tables}


def settled_cases(conn: Connection) -> list[Case]:
    """Every settled win-back task as a :class:`Case` (escalated ones left out).

    *Returned*: the task ended ``won_back`` (a purchase within the window). *Contacted*:
    the CRM reported it reached the customer (contacted, accepted, declined or done).
    The delay is that of the CRM's first report; a held-out task has none.
    """
    return [
        Case(
            reason=task.reason,
            tier=task.value_tier,
            action=task.action,
            returned=task.status == "won_back",
            contacted=task.reached,
            delay=None if task.action == HOLDOUT else _delay(task.ts, task.first_ts),
        )
        for task in store.settled_tasks(conn)
    ]


def _delay(task_ts: datetime, first_report: datetime | None) -> str:
    """The contact-delay bucket of the failures view."""
    if first_report is None:
        return "not contacted"
    hours = (aware(first_report) - aware(task_ts)).total_seconds() / 3600
    return "< 24 h" if hours < 24 else "1-3 days" if hours <= 72 else "> 3 days"


def uplift_tables(
    cases: Sequence[Case],
    min_customers: int = 30,
    playbook: Playbook | None = None,
    contact_cost: float = 0.0,
    return_value: float = 1.0,
) -> dict[str, Any]:
    """The uplift per action, per tier and per contact delay (each within its reason),
    the counts behind it, and per reason and tier the action to adopt with its TOML."""
    out: dict[str, Any] = {
        "contacts": {
            "settled": len(cases),
            "held_out": sum(c.action == HOLDOUT for c in cases),
            "contacted": sum(c.contacted for c in cases),
        }
    }
    for name, by in UPLIFT_BY.items():
        out[name] = [
            _cell_row(by, cell) for cell in estimate(cases, by, min_customers=min_customers)
        ]
    by_tier = estimate(cases, UPLIFT_BY["uplift_by_tier"], min_customers=min_customers)
    picks = recommend(by_tier, contact_cost, return_value)
    out["recommended_actions"] = [
        {
            "reason": reason,
            "tier": tier,
            "action": action,
            "why": why,
            "toml": _toml(playbook, reason, tier, action),
        }
        for (reason, tier), (action, why) in picks.items()
    ]
    return out


def measured_rates(
    cases: Sequence[Case], prior: float, min_customers: int = 30
) -> dict[str, tuple[float, str]]:
    """Per tier, what a contact adds to an alerted customer's return, where it is known.

    Every action of the tier counts as one treatment against the tier's control
    group. With at least ``min_customers`` cases in each group, the uplift, shrunk
    toward ``prior`` by how much evidence there is (:func:`~churnwatch.winback.uplift.shrunk`)
    and kept within [0, 1], replaces the prior in ``replay --capacity``'s
    recommendation; the text says where it comes from.
    """
    pooled = [c if c.action == HOLDOUT else replace(c, action="contact") for c in cases]
    out: dict[str, tuple[float, str]] = {}
    for cell in estimate(pooled, ("tier", "action"), min_customers=min_customers):
        if not cell.enough or cell.uplift is None:
            continue
        rate = min(max(shrunk(cell, prior), 0.0), 1.0)
        out[cell.key[0]] = (
            rate,
            f"measured uplift {cell.uplift:+.1%} (95 % CI {cell.low:+.1%} to {cell.high:+.1%}; "
            f"{cell.treated.n} contacted, {cell.control.n} held out), shrunk toward the "
            f"{prior:.0%} prior: {rate:.1%}",
        )
    return out


def _cell_row(by: Sequence[str], cell: Cell) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return {
        **dict(zip(by, cell.key, strict=True)),
        "treated": cell.treated.n,
        "treated_returned": cell.treated.returned,
        "control": cell.control.n,
        "control_returned": cell.control.returned,
        "return_rate": rounded(cell.treated.rate),
        "control_rate": rounded(cell.control.rate),
        "uplift": rounded(cell.uplift),
        "uplift_low": rounded(cell.low),
        "uplift_high": rounded(cell.high),
        "evidence": "enough" if cell.enough else cell.note,
    }


def _toml(playbook: Playbook | None, reason: str, tier: str, action: str) -> str | None:
    """The playbook lines that make ``action`` the rule of ``reason`` and ``tier``."""
    if playbook is None:
        return None
    rule = playbook.action_for(reason, tier)
    step = next((s for s in rule.arms if s.action == action), None)
    if step is None:  # an action the playbook no longer lists
        return None
    fields = Step.model_fields
    lines = [f"[{reason}.{tier}]"] + [
        f"{name} = {orjson.dumps(getattr(step, name)).decode()}" for name in fields
    ]
    return "\n".join(lines)


def render(report: dict[str, Any]) -> None:
    """Print the views and uplift tables: drawn on a terminal, Markdown through a pipe
    (never cut); then the action to adopt per reason and tier, with its TOML."""
    from churnwatch.tables import show

    contacts = report.get("contacts")
    if contacts:
        print(
            f"settled cases: {contacts['settled']}, held out: {contacts['held_out']}, "
            f"reported contacted: {contacts['contacted']}"
        )
    for name, rows in report.items():
        if name in ("contacts", "recommended_actions"):
            continue
        if not rows:
            print(f"{name}: no rows yet")
            continue
        cells = [["" if v is None else str(v) for v in row.values()] for row in rows]
        show(list(rows[0]), cells, title=name)
    picks = report.get("recommended_actions") or []
    if not picks:
        print("recommended actions: no action has enough evidence against its control yet")
    for pick in picks:
        print(f"\n{pick['reason']} / {pick['tier']}: {pick['action']!r}: {pick['why']}")
        if pick["toml"]:
            print(pick["toml"])
