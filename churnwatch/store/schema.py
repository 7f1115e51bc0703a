"""The store's tables: one :class:`sqlalchemy.MetaData` that Alembic's migrations reach.

``events`` is append-only and idempotent on ``event_id``; its ``seq`` is the
store position, in the order the worker folded the events; ``customer_state``
holds the folded state of every customer; ``customer_changes`` every lifecycle
stage and value tier move; ``alerts`` every churn alert.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

#: Store position: increases with every stored event, in the order of folding.
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False, unique=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("topic", sa.String(40), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("payload", JSONType, nullable=False),
    # where the event came from, e.g. "purchases/2/1734"; tells a redelivery
    # (same place) from a second event that reuses an id (another place)
    sa.Column("source", sa.String(300), nullable=True),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
)

customer_state = sa.Table(
    "customer_state",
    metadata,
    sa.Column("customer_id", sa.String(200), primary_key=True),
    sa.Column("partition", sa.Integer, nullable=False, index=True),
    sa.Column("state", JSONType, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # copies of the state's conclusions, for dashboards and outside readers
    sa.Column("lifecycle_stage", sa.String(16), nullable=True),
    sa.Column("value_tier", sa.String(16), nullable=True),
    #: the churn score of the customer's latest assessment, and its event time
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
    #: bumped by every save: a writer saves only over the version it read (fencing)
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # what an assignment needs of a customer, so that it need not read the state:
    # its newest event time, its next wake-up and its tier inputs (engine/lanes.py);
    # NULL in rows saved before these columns existed
    sa.Column("last_event_s", sa.Float, nullable=True),
    sa.Column("next_due_s", sa.Float, nullable=True),
    sa.Column("last_purchase_s", sa.Float, nullable=True),
    sa.Column("frequency_365d", sa.Integer, nullable=True),
    sa.Column("monetary_365d", sa.Float, nullable=True),
)

#: the columns of ``customer_state`` that :func:`stream_standings` reads
STANDING_COLUMNS = (
    "last_event_s",
    "next_due_s",
    "last_purchase_s",
    "frequency_365d",
    "monetary_365d",
)

lane_rankings = sa.Table(
    "lane_rankings",
    metadata,
    #: the input partition whose lane ranked its customers' tiers
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    #: the day of event time (days since the epoch) the ranks were taken on
    sa.Column("day", sa.Integer, nullable=False),
    #: the R, F and M snapshots, each ``[bins, members in each]``
    sa.Column("snapshots", JSONType, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

customer_changes = sa.Table(
    "customer_changes",
    metadata,
    sa.Column("change_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("field", sa.String(32), nullable=False),
    sa.Column("from_value", sa.String(32), nullable=True),
    sa.Column("to_value", sa.String(32), nullable=False),
    sa.Column("cause", sa.String(300), nullable=False),
    sa.Column("segments", JSONType, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    #: set once the record is on ``customer-changes``
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    #: the case the alert opened or escalated (alerts/policy.py)
    sa.Column("case_id", sa.String(64), nullable=True, index=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("risk_level", sa.String(16), nullable=False),
    sa.Column("value_tier", sa.String(16), nullable=False),
    #: region, industry, channel and segment (features/segments.py)
    sa.Column("segments", JSONType, nullable=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("reason_codes", JSONType, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("lifecycle_stage", sa.String(16), nullable=True),
    sa.Column("trigger", sa.String(300), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    #: set from the live alerts page: someone on the team has seen the alert
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    #: set once the record is on ``churn-alerts``; the outbox sends the rest
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    #: what the customer is worth and what their churn puts at risk (models/value.py)
    sa.Column("p_alive", sa.Float, nullable=True),
    sa.Column("expected_purchases", sa.Float, nullable=True),
    sa.Column("clv", sa.Float, nullable=True),
    sa.Column("clv_horizon_days", sa.Float, nullable=True),
    sa.Column("value_at_risk", sa.Float, nullable=True, index=True),
)

winback_tasks = sa.Table(
    "winback_tasks",
    metadata,
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("alert_id", sa.String(64), nullable=False, index=True),
    sa.Column("case_id", sa.String(64), nullable=True, index=True),
    sa.Column("customer_id", sa.String(200), nullable=False, index=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("action", sa.String(300), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
    sa.Column("owner_queue", sa.String(100), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("value_tier", sa.String(16), nullable=False),
    sa.Column("segments", JSONType, nullable=True),
    sa.Column("risk_level", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    #: set once the record is on ``winback-tasks``
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)


#: who on the retention team works a case (set from the worklist; the case keeps it)
case_owners = sa.Table(
    "case_owners",
    metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("assigned_by", sa.String(200), nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
)


winback_outcomes = sa.Table(
    "winback_outcomes",
    metadata,
    sa.Column("outcome_id", sa.String(64), primary_key=True),
    sa.Column("task_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


models = sa.Table(
    "models",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("card", JSONType, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # the current model is the one promoted last
    sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
    #: hex SHA-256 of the artifact file, recorded at training; the worker checks it
    sa.Column("sha256", sa.String(64), nullable=True),
)
