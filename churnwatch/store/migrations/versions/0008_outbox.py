"""alerts.published_at and winback_tasks.published_at: the outbox of the topics

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("alerts", "winback_tasks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    # what was stored before the outbox existed counts as sent
    op.execute("UPDATE alerts SET published_at = created_at")
    op.execute("UPDATE winback_tasks SET published_at = created_at")


def downgrade() -> None:
    for table in ("winback_tasks", "alerts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("published_at")
