"""front desk statuses: checked in, completed, no-show

`CHECKED_IN` and `COMPLETED` visits keep their slot, so they join the active statuses of the
partial unique index (the double-booking guard); `NO_SHOW` frees it, like `CANCELLED`. The
index is rebuilt `CONCURRENTLY` under a temporary name and swapped in, as in 0003, so the guard
is never absent. New enum values must be committed before an index predicate may name them,
hence the autocommit block.

Downgrade swaps the old index back; PostgreSQL cannot drop enum values, so they stay (unused
by the older code, which never writes them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("CHECKED_IN", "COMPLETED", "NO_SHOW")
_ACTIONS = ("checked_in", "completed", "no_show")
_ACTIVE_NOW = "status IN ('BOOKED', 'RESCHEDULED', 'CHECKED_IN', 'COMPLETED')"
_ACTIVE_BEFORE = "status IN ('BOOKED', 'RESCHEDULED')"


def _swap(predicate: str) -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS uq_appointments_active_slot_new")
        op.create_index(
            "uq_appointments_active_slot_new",
            "appointments",
            ["doctor_id", "date", "start_time"],
            unique=True,
            postgresql_where=sa.text(predicate),
            postgresql_include=["end_time"],
            postgresql_concurrently=True,
        )
    op.drop_index("uq_appointments_active_slot", table_name="appointments")
    op.execute("ALTER INDEX uq_appointments_active_slot_new RENAME TO uq_appointments_active_slot")


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for status in _STATUSES:
            op.execute(f"ALTER TYPE appointment_status ADD VALUE IF NOT EXISTS '{status}'")
        for action in _ACTIONS:
            op.execute(f"ALTER TYPE appointment_action ADD VALUE IF NOT EXISTS '{action}'")
    _swap(_ACTIVE_NOW)


def downgrade() -> None:
    _swap(_ACTIVE_BEFORE)
