"""recurring series: a course of visits booked in one call

`appointment_series` keeps the recurrence as answered; each occurrence is an ordinary
appointment carrying `series_id` (null for a single booking), found by the partial index.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointment_series",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("visit_type_id", sa.Uuid(), nullable=True),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("repeat_interval", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.SmallInteger(), nullable=True),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "frequency IN ('daily', 'weekly')", name=op.f("ck_appointment_series_frequency")
        ),
        sa.CheckConstraint(
            "repeat_interval BETWEEN 1 AND 4", name=op.f("ck_appointment_series_repeat_interval")
        ),
        sa.CheckConstraint(
            "(count IS NULL) <> (until IS NULL)", name=op.f("ck_appointment_series_count_or_until")
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["doctors.id"], name=op.f("fk_appointment_series_doctor_id_doctors")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_appointment_series_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["visit_type_id"],
            ["visit_types.id"],
            name=op.f("fk_appointment_series_visit_type_id_visit_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_series")),
    )
    op.create_index(
        "ix_appointment_series_patient_id", "appointment_series", ["patient_id"], unique=False
    )
    op.add_column("appointments", sa.Column("series_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_appointments_series_id_appointment_series"),
        "appointments",
        "appointment_series",
        ["series_id"],
        ["id"],
    )
    op.create_index(
        "ix_appointments_series_id",
        "appointments",
        ["series_id"],
        unique=False,
        postgresql_where=sa.text("series_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_appointments_series_id", table_name="appointments")
    op.drop_constraint(
        op.f("fk_appointments_series_id_appointment_series"), "appointments", type_="foreignkey"
    )
    op.drop_column("appointments", "series_id")
    op.drop_index("ix_appointment_series_patient_id", table_name="appointment_series")
    op.drop_table("appointment_series")
