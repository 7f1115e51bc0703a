"""alerts: the customer's value (CLV) and the value at risk the live page ranks by

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = ("p_alive", "expected_purchases", "clv", "clv_horizon_days", "value_at_risk")


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Float, nullable=True))
        batch.create_index("ix_alerts_value_at_risk", ["value_at_risk"])


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_value_at_risk")
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
