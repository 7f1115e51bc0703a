"""customer_state.version (fencing), models.sha256 (integrity), customer_changes.published_at

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_state") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("sha256", sa.String(64), nullable=True))
    with op.batch_alter_table("customer_changes") as batch:
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    # what was stored before the changes had an outbox counts as sent
    op.execute("UPDATE customer_changes SET published_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("customer_changes") as batch:
        batch.drop_column("published_at")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("sha256")
    with op.batch_alter_table("customer_state") as batch:
        batch.drop_column("version")
