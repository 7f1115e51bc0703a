"""customer_changes; lifecycle stage and tier on customer_state and alerts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customer_changes",
        sa.Column("change_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False, index=True),
        sa.Column("ts", TS, nullable=False, index=True),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("from_value", sa.String(32), nullable=True),
        sa.Column("to_value", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(300), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    with op.batch_alter_table("customer_state") as batch:
        batch.add_column(sa.Column("lifecycle_stage", sa.String(16), nullable=True))
        batch.add_column(sa.Column("value_tier", sa.String(16), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("lifecycle_stage", sa.String(16), nullable=True))
        batch.add_column(sa.Column("trigger", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("trigger")
        batch.drop_column("lifecycle_stage")
    with op.batch_alter_table("customer_state") as batch:
        batch.drop_column("value_tier")
        batch.drop_column("lifecycle_stage")
    op.drop_table("customer_changes")
