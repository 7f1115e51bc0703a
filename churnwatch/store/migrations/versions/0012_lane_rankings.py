"""lane_rankings: the ranks each partition's lane reads value tiers against

A lane ranks its customers once per day of event time and reads tiers
against that snapshot for the rest of the day. Saved with the batch that
took it, so that a restarted worker (a rebalance, a fold process that
died) ranks exactly as the one before it did, and raises the same records.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lane_rankings",
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column(
            "snapshots", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lane_rankings")
