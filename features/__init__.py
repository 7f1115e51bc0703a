"""Per-customer features as one fold, ``apply(state, event) -> state``.

Plain Python with no Faust or Kafka imports: the stream worker and replay call
the very same code.
"""

from churnwatch.features.state import CustomerState, apply

__all__ = ["CustomerState", "apply"]
