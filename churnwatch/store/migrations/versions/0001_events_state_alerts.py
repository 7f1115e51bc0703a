"""events, customer_state and alerts

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("source", sa.String(300), nullable=True),
        sa.Column("stored_at", TS, nullable=False),
    )
    op.create_index("ix_events_customer_id", "events", ["customer_id"])
    op.create_index("ix_events_ts", "events", ["ts"])

    op.create_table(
        "customer_state",
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("state", JSONType, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_customer_state_partition", "customer_state", ["partition"])

    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("risk_level", sa.String(16), nullable=False),
        sa.Column("value_tier", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("reason_codes", JSONType, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_alerts_customer_id", "alerts", ["customer_id"])
    op.create_index("ix_alerts_ts", "alerts", ["ts"])


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("customer_state")
    op.drop_table("events")
