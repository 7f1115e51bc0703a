"""Win-back tasks: the playbook's action for an alert, for the CRM to carry out."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from churnwatch.alerts.config import Playbook
from churnwatch.records import ChurnAlert, WinbackTask

_TASK_NAMESPACE = uuid.UUID("2d7e4c1a-9b3f-4e8d-a6c5-1f0b9e7d3c24")


def task_id(alert_id: str) -> str:
    """Deterministic: one task per alert, whoever raises it and however often."""
    return str(uuid.uuid5(_TASK_NAMESPACE, alert_id))


def build_task(alert: ChurnAlert, playbook: Playbook) -> WinbackTask:
    """The ``winback-tasks`` record (docs/contract.md) for ``alert``."""
    action = playbook.action_for(alert["reason"], alert["value_tier"])
    raised = datetime.fromisoformat(alert["ts"])
    return WinbackTask(
        task_id=task_id(alert["alert_id"]),
        alert_id=alert["alert_id"],
        case_id=alert["case_id"],
        customer_id=alert["customer_id"],
        ts=alert["ts"],
        action=action.action,
        channel=action.channel,
        priority=action.priority,
        due_by=(raised + timedelta(hours=action.due_hours)).isoformat(),
        owner_queue=action.owner_queue,
        reason=alert["reason"],
        value_tier=alert["value_tier"],
        segments=alert["segments"],
        risk_level=alert["risk_level"],
    )
