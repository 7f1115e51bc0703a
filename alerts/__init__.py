"""Alert policy: from scores to churn alerts. Plain Python, shared with replay."""

from churnwatch.alerts.policy import RISK_THRESHOLDS, alert_id, build_alert, next_level

__all__ = ["RISK_THRESHOLDS", "alert_id", "build_alert", "next_level"]
