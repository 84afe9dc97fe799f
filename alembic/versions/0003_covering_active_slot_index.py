"""active-slot index covers end_time

The partial unique index on active appointments also carries `end_time`, so the availability
read (which selects exactly doctor, date, start and end of active appointments) is answered by
an index-only scan instead of visiting a heap page per booking. The new index is built
`CONCURRENTLY` under a temporary name (bookings keep being written meanwhile), then swapped in:
the double-booking guard is never absent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = sa.text("status IN ('BOOKED', 'RESCHEDULED')")


def _swap(include: list[str]) -> None:
    with op.get_context().autocommit_block():
        # A build interrupted earlier leaves an invalid index behind; start clean.
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS uq_appointments_active_slot_new")
        op.create_index(
            "uq_appointments_active_slot_new",
            "appointments",
            ["doctor_id", "date", "start_time"],
            unique=True,
            postgresql_where=_ACTIVE,
            postgresql_include=include,
            postgresql_concurrently=True,
        )
    op.drop_index("uq_appointments_active_slot", table_name="appointments")
    op.execute("ALTER INDEX uq_appointments_active_slot_new RENAME TO uq_appointments_active_slot")


def upgrade() -> None:
    _swap(["end_time"])


def downgrade() -> None:
    _swap([])
