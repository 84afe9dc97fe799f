"""holds: a slot kept for a caller for a few minutes

A hold counts as an appointment for everyone else while it is `active` and unexpired; expiry
is a comparison with `expires_at`, so no job has to run for it. Like appointments, a hold
moves its date's `doctor_days.version` (migration 0004) when it is made, booked, released,
deleted or its expiry is edited, so bookings decided on an older read cannot commit and
remembered days are read again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("visit_type_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("start_time < end_time", name=op.f("ck_holds_time_order")),
        sa.CheckConstraint(
            "status IN ('active', 'booked', 'released')", name=op.f("ck_holds_status")
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_holds_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_type_id"], ["visit_types.id"], name=op.f("fk_holds_visit_type_id_visit_types")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_holds_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index(
        "ix_holds_doctor_id_date_active",
        "holds",
        ["doctor_id", "date"],
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_holds_expires_at", "holds", ["expires_at"])
    op.execute(
        "CREATE TRIGGER holds_day_version "
        "AFTER INSERT OR DELETE OR UPDATE OF doctor_id, date, start_time, end_time, status, "
        "expires_at ON holds FOR EACH ROW EXECUTE FUNCTION bump_doctor_day_version()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS holds_day_version ON holds")
    op.drop_table("holds")
