"""Churn scoring: plain Python over customer state (no Faust, no Kafka)."""

from churnwatch.models.rule import RULE_VERSION, Score, rule_score

__all__ = ["RULE_VERSION", "Score", "rule_score"]
