"""customer_state: what an assignment reads instead of every state (issue 22)

The newest event time, next wake-up and tier inputs of each customer, saved
with its state. Rows saved before keep NULL: an assignment reads their state
instead, until their next save fills the columns.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("last_event_s", sa.Float),
    ("next_due_s", sa.Float),
    ("last_purchase_s", sa.Float),
    ("frequency_365d", sa.Integer),
    ("monetary_365d", sa.Float),
)


def upgrade() -> None:
    with op.batch_alter_table("customer_state") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_state") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
