"""Churn scoring: plain Python over customer state (no Faust, no Kafka)."""
