"""churnwatch: event-sourced churn early warning on Kafka streams."""

from churnwatch import native

__version__ = "0.1.0"

# before any submodule is imported: the hot layers load compiled when built and current
native.install()
