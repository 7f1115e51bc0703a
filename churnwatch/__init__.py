"""churnwatch: event-sourced churn early warning on Kafka streams."""

__version__ = "0.1.0"
