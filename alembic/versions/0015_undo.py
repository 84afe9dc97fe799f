"""undo: a front desk step taken back, in the audit trail as its own action

A new enum value must be committed before it is used, hence the autocommit block. PostgreSQL
cannot drop an enum value, so downgrade leaves it (unused by the older code).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE appointment_action ADD VALUE IF NOT EXISTS 'undo'")


def downgrade() -> None:
    pass
