"""an index for the search's specialization filter

The cross-doctor search filters doctors by `lower(specialization)`; without an index a clinic
group's every search scans all its doctors (bench/scale.py: 0.4 ms of 0.8 at 500 doctors).
Built `CONCURRENTLY`, so a running clinic keeps booking while it is made.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_doctors_specialization "
            "ON doctors (lower(specialization))"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_doctors_specialization")
