"""The event store: the source of truth (SQLAlchemy 2 Core, SQLite or PostgreSQL).

The one door to SQL: every query churnwatch runs is a function of this package
(docs/architecture.md, "One door to SQL"); the layers above pass connections
and records, never statements. Each module has one job:

- :mod:`~churnwatch.store.schema`: the tables and their metadata
- :mod:`~churnwatch.store.connect`: engines and migrations
- :mod:`~churnwatch.store.event_log`: the append-only event log
- :mod:`~churnwatch.store.states`: customer state and the lanes' tier rankings
- :mod:`~churnwatch.store.cases`: alerts, their endings, lifecycle and tier changes
- :mod:`~churnwatch.store.winback`: win-back tasks and the CRM's outcomes
- :mod:`~churnwatch.store.registry`: the model registry

A worker writes all of one batch in a single transaction, so a crash leaves
either the whole batch or none of it (docs/architecture.md, "The store decides").
``from churnwatch import store; store.X`` reaches the whole public API.
"""

from __future__ import annotations

from churnwatch.store.cases import add_alerts, add_changes, end_alerts
from churnwatch.store.connect import count_rows, make_engine, upgrade
from churnwatch.store.event_log import (
    append_events,
    count_events,
    read_events,
    read_events_of,
    sources_of,
)
from churnwatch.store.registry import (
    current_model,
    current_model_entry,
    promote_model,
    register_model,
)
from churnwatch.store.schema import (
    STANDING_COLUMNS,
    JSONType,
    SeqType,
    alerts,
    case_owners,
    customer_changes,
    customer_state,
    events,
    lane_rankings,
    metadata,
    models,
    winback_outcomes,
    winback_tasks,
)
from churnwatch.store.states import (
    StaleState,
    load_rankings,
    load_states,
    load_versioned_states,
    save_rankings,
    save_states,
    stream_standings,
)
from churnwatch.store.winback import add_outcomes, add_tasks

# re-exported: the store reads and writes aware UTC times
from churnwatch.times import aware as aware
from churnwatch.times import utcnow as utcnow

__all__ = [
    "STANDING_COLUMNS",
    "JSONType",
    "SeqType",
    "StaleState",
    "add_alerts",
    "add_changes",
    "add_outcomes",
    "add_tasks",
    "alerts",
    "append_events",
    "aware",
    "case_owners",
    "count_events",
    "count_rows",
    "current_model",
    "current_model_entry",
    "customer_changes",
    "customer_state",
    "end_alerts",
    "events",
    "lane_rankings",
    "load_rankings",
    "load_states",
    "load_versioned_states",
    "make_engine",
    "metadata",
    "models",
    "promote_model",
    "read_events",
    "read_events_of",
    "register_model",
    "save_rankings",
    "save_states",
    "sources_of",
    "stream_standings",
    "upgrade",
    "utcnow",
    "winback_outcomes",
    "winback_tasks",
]
