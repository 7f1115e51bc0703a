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
- :mod:`~churnwatch.store.outbox`: the stored records not yet on their topics
- :mod:`~churnwatch.store.feed`: the worklist's and the web API's reads and writes

A worker writes all of one batch in a single transaction, so a crash leaves
either the whole batch or none of it (docs/architecture.md, "The store decides").
``from churnwatch import store; store.X`` reaches the whole public API.
"""

from __future__ import annotations

from churnwatch.store.cases import add_alerts, add_changes, end_alerts
from churnwatch.store.connect import (
    Connection,
    Engine,
    StoreUrl,
    count_rows,
    login_rights,
    make_engine,
    parse_url,
    schema_revision,
    upgrade,
)
from churnwatch.store.event_log import (
    append_events,
    count_events,
    event_times,
    event_writer,
    read_events,
    read_events_of,
    sources_of,
)
from churnwatch.store.feed import (
    UNASSIGNED,
    acknowledge_alert,
    assign_case,
    case_alerts,
    case_owner,
    customer_row,
    feed_alerts,
    feed_cases,
    feed_tasks,
    recent_alerts,
    recent_events,
)
from churnwatch.store.outbox import mark_sent, unsent
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
from churnwatch.store.winback import (
    VIEWS,
    SettledTask,
    add_outcomes,
    add_tasks,
    count_tasks,
    settled_tasks,
    view_rows,
)

# re-exported: the store reads and writes aware UTC times
from churnwatch.times import aware as aware
from churnwatch.times import utcnow as utcnow

__all__ = [
    "STANDING_COLUMNS",
    "UNASSIGNED",
    "VIEWS",
    "Connection",
    "Engine",
    "JSONType",
    "SeqType",
    "SettledTask",
    "StaleState",
    "StoreUrl",
    "acknowledge_alert",
    "add_alerts",
    "add_changes",
    "add_outcomes",
    "add_tasks",
    "alerts",
    "append_events",
    "assign_case",
    "aware",
    "case_alerts",
    "case_owner",
    "case_owners",
    "count_events",
    "count_rows",
    "count_tasks",
    "current_model",
    "current_model_entry",
    "customer_changes",
    "customer_row",
    "customer_state",
    "end_alerts",
    "event_times",
    "event_writer",
    "events",
    "feed_alerts",
    "feed_cases",
    "feed_tasks",
    "lane_rankings",
    "load_rankings",
    "load_states",
    "load_versioned_states",
    "login_rights",
    "make_engine",
    "mark_sent",
    "metadata",
    "models",
    "parse_url",
    "promote_model",
    "read_events",
    "read_events_of",
    "recent_alerts",
    "recent_events",
    "register_model",
    "save_rankings",
    "save_states",
    "schema_revision",
    "settled_tasks",
    "sources_of",
    "stream_standings",
    "unsent",
    "upgrade",
    "utcnow",
    "view_rows",
    "winback_outcomes",
    "winback_tasks",
]
