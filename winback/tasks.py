"""Win-back tasks: the playbook's action for an alert, for the CRM to carry out."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from churnwatch.alerts.config import HOLDOUT, Playbook
from churnwatch.records import ChurnAlert, WinbackTask
from churnwatch.winback.holdout import assign

_TASK_NAMESPACE = uuid.UUID("2d7e4c1a-9b3f-4e8d-a6c5-1f0b9e7d3c24")
#: the channel of a held-out case's task: nobody contacts the customer
NO_CHANNEL = "none"


def task_id(alert_id: str) -> str:
    """Deterministic: one task per alert, whoever raises it and however often."""
    return str(uuid.uuid5(_TASK_NAMESPACE, alert_id))


def build_task(alert: ChurnAlert, playbook: Playbook) -> WinbackTask:
    """The ``winback-tasks`` record (docs/contract.md) for ``alert``.

    The case is assigned, by :func:`~churnwatch.winback.holdout.assign`, to the
    control group (a task with action ``holdout``, never sent for contact) or
    to one of the rule's actions; every alert of a case gets the same.
    """
    rule = playbook.action_for(alert["reason"], alert["value_tier"])
    arm = assign(
        alert["customer_id"],
        alert["case_id"],
        playbook.holdout.salt,
        playbook.control_share(alert["reason"], alert["value_tier"]),
        [step.action for step in rule.arms],
    )
    step = next((s for s in rule.arms if s.action == arm), None)
    raised = datetime.fromisoformat(alert["ts"])
    due = raised + timedelta(hours=(step or rule).due_hours)
    return WinbackTask(
        task_id=task_id(alert["alert_id"]),
        alert_id=alert["alert_id"],
        case_id=alert["case_id"],
        customer_id=alert["customer_id"],
        ts=alert["ts"],
        action=arm,
        channel=step.channel if step else NO_CHANNEL,
        priority=(step or rule).priority,
        due_by=due.isoformat(),
        owner_queue=step.owner_queue if step else HOLDOUT,
        reason=alert["reason"],
        value_tier=alert["value_tier"],
        segments=alert["segments"],
        risk_level=alert["risk_level"],
    )


def for_contact(task: WinbackTask) -> bool:
    """Whether ``task`` goes to the CRM: a held-out case's task never does."""
    return task["action"] != HOLDOUT
