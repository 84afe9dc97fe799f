"""outbox jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_jobs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("aggregate_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "available_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("locked_by", sa.String(length=100), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_jobs")),
    )
    op.create_index(
        "ix_outbox_jobs_status_available_at",
        "outbox_jobs",
        ["status", "available_at"],
        unique=False,
    )
    op.create_index(
        "ix_outbox_jobs_target_aggregate_id",
        "outbox_jobs",
        ["target", "aggregate_id"],
        unique=False,
    )
    op.create_index(
        "uq_outbox_jobs_pending_aggregate",
        "outbox_jobs",
        ["target", "aggregate_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.add_column(
        "appointments", sa.Column("google_calendar_id", sa.String(length=320), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("appointments", "google_calendar_id")
    op.drop_index(
        "uq_outbox_jobs_pending_aggregate",
        table_name="outbox_jobs",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_outbox_jobs_target_aggregate_id", table_name="outbox_jobs")
    op.drop_index("ix_outbox_jobs_status_available_at", table_name="outbox_jobs")
    op.drop_table("outbox_jobs")
