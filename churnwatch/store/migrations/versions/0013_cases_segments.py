"""cases and segments: alerts and tasks name their case, alerts, tasks and changes the
segments; cases have owners

A case is one episode of a customer at risk: the alert raised while none is
open opens it, and the alerts that escalate it share its ``case_id`` (the id
of its first alert). Rows stored before cases existed are each their own case,
as the worker reads the alert state it stored then. ``segments`` holds the
customer's region, industry, channel and segment as of the alert, task or
change (empty in older rows). ``case_owners`` says who on the team works a case.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # added as nullable and filled, not altered to NOT NULL: on SQLite that would
    # rebuild the tables under the views that read them
    for table in ("alerts", "winback_tasks"):
        op.add_column(table, sa.Column("case_id", sa.String(64), nullable=True))
        op.execute(f"UPDATE {table} SET case_id = alert_id")
        op.create_index(f"ix_{table}_case_id", table, ["case_id"])
    for table in ("alerts", "winback_tasks", "customer_changes"):
        op.add_column(
            table,
            sa.Column(
                "segments",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            ),
        )

    op.create_table(
        "case_owners",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False, index=True),
        sa.Column("assigned_by", sa.String(200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_owners")
    with op.batch_alter_table("customer_changes") as batch:
        batch.drop_column("segments")
    for table in ("alerts", "winback_tasks"):
        op.drop_index(f"ix_{table}_case_id", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("case_id")
            batch.drop_column("segments")
