"""winback_effectiveness and winback_failures: the win-back evaluation as views

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op

from churnwatch.winback.views import view_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, select in view_sql(dialect).items():
        op.execute(f"CREATE VIEW {name} AS {select}")


def downgrade() -> None:
    for name in ("winback_failures", "winback_effectiveness"):
        op.execute(f"DROP VIEW IF EXISTS {name}")
