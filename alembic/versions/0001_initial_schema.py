"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION appointment_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'appointment_events is append-only';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "doctors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("specialization", sa.String(length=200), nullable=False),
        sa.Column("experience_years", sa.Integer(), nullable=False),
        sa.Column("languages", sa.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("consultation_type", sa.String(length=100), nullable=False),
        sa.Column("general_working_days_text", sa.Text(), nullable=True),
        sa.Column("working_days", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("working_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("slot_duration_minutes", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
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
        sa.CheckConstraint(
            "experience_years >= 0", name=op.f("ck_doctors_experience_non_negative")
        ),
        sa.CheckConstraint(
            "slot_duration_minutes BETWEEN 5 AND 480", name=op.f("ck_doctors_slot_duration_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctors")),
        sa.UniqueConstraint("email", name=op.f("uq_doctors_email")),
    )
    op.create_index(op.f("ix_doctors_clinic_id"), "doctors", ["clinic_id"], unique=False)
    op.create_index(op.f("ix_doctors_is_active"), "doctors", ["is_active"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("actor", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        "ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], unique=False
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mobile_number", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("gender", sa.String(length=50), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )
    op.create_index(op.f("ix_patients_mobile_number"), "patients", ["mobile_number"], unique=True)
    op.create_table(
        "appointments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("BOOKED", "CANCELLED", "RESCHEDULED", name="appointment_status"),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum("AI_CALLING_AGENT", "ADMIN", name="appointment_source"),
            nullable=False,
        ),
        sa.Column("google_calendar_event_id", sa.String(length=1024), nullable=True),
        sa.Column(
            "calendar_sync_status",
            sa.Enum("pending", "synced", "failed", "disabled", name="calendar_sync_status"),
            nullable=False,
        ),
        sa.Column("calendar_sync_error", sa.Text(), nullable=True),
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
        sa.CheckConstraint("start_time < end_time", name=op.f("ck_appointments_time_order")),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["doctors.id"], name=op.f("fk_appointments_doctor_id_doctors")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_appointments_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index(
        "ix_appointments_doctor_id_date",
        "appointments",
        ["doctor_id", "date", "start_time"],
        unique=False,
    )
    op.create_index(
        "ix_appointments_patient_id_date",
        "appointments",
        ["patient_id", "date", "start_time"],
        unique=False,
    )
    op.create_index(
        "uq_appointments_active_slot",
        "appointments",
        ["doctor_id", "date", "start_time"],
        unique=True,
        postgresql_where=sa.text("status IN ('BOOKED', 'RESCHEDULED')"),
    )
    op.create_table(
        "doctor_leaves",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("start_time", sa.Time(), nullable=True),
        sa.Column("end_time", sa.Time(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(start_time IS NULL AND end_time IS NULL) OR "
            "(start_time IS NOT NULL AND end_time IS NOT NULL AND start_time < end_time)",
            name=op.f("ck_doctor_leaves_time_window"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_doctor_leaves_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctor_leaves")),
    )
    op.create_index(
        "ix_doctor_leaves_doctor_id_date", "doctor_leaves", ["doctor_id", "date"], unique=False
    )
    op.create_index(
        "uq_doctor_leaves_whole_day",
        "doctor_leaves",
        ["doctor_id", "date"],
        unique=True,
        postgresql_where=sa.text("start_time IS NULL"),
    )
    op.create_table(
        "patient_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("symptoms", sa.Text(), nullable=True),
        sa.Column("medical_conditions", sa.ARRAY(sa.String(length=500)), nullable=False),
        sa.Column("allergies", sa.ARRAY(sa.String(length=500)), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_history_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_history")),
    )
    op.create_index(
        "ix_patient_history_patient_created",
        "patient_history",
        ["patient_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "appointment_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "action",
            sa.Enum("created", "rescheduled", "cancelled", name="appointment_action"),
            nullable=False,
        ),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column(
            "source",
            postgresql.ENUM(
                "AI_CALLING_AGENT", "ADMIN", name="appointment_source", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_events_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_events")),
    )
    op.create_index(
        "ix_appointment_events_appointment_id",
        "appointment_events",
        ["appointment_id", "id"],
        unique=False,
    )
    # The audit trail is append-only: refuse edits and deletes at the database itself.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER appointment_events_append_only "
        "BEFORE UPDATE OR DELETE ON appointment_events "
        "FOR EACH ROW EXECUTE FUNCTION appointment_events_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS appointment_events_append_only ON appointment_events")
    op.execute("DROP FUNCTION IF EXISTS appointment_events_append_only()")
    op.drop_index("ix_appointment_events_appointment_id", table_name="appointment_events")
    op.drop_table("appointment_events")
    op.drop_index("ix_patient_history_patient_created", table_name="patient_history")
    op.drop_table("patient_history")
    op.drop_index(
        "uq_doctor_leaves_whole_day",
        table_name="doctor_leaves",
        postgresql_where=sa.text("start_time IS NULL"),
    )
    op.drop_index("ix_doctor_leaves_doctor_id_date", table_name="doctor_leaves")
    op.drop_table("doctor_leaves")
    op.drop_index(
        "uq_appointments_active_slot",
        table_name="appointments",
        postgresql_where=sa.text("status IN ('BOOKED', 'RESCHEDULED')"),
    )
    op.drop_index("ix_appointments_patient_id_date", table_name="appointments")
    op.drop_index("ix_appointments_doctor_id_date", table_name="appointments")
    op.drop_table("appointments")
    op.drop_index(op.f("ix_patients_mobile_number"), table_name="patients")
    op.drop_table("patients")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_doctors_is_active"), table_name="doctors")
    op.drop_index(op.f("ix_doctors_clinic_id"), table_name="doctors")
    op.drop_table("doctors")
    for enum_name in (
        "appointment_action",
        "calendar_sync_status",
        "appointment_source",
        "appointment_status",
    ):
        op.execute(f"DROP TYPE IF EXISTS {enum_name}")
