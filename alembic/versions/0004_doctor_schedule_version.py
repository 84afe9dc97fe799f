"""schedule versions: per doctor and per doctor-day

A booking reads the doctor's day, decides with the availability engine, then writes in one
statement only if nothing that decided it has changed since (app/services/booking_queries.py).
Two counters say so, both kept by triggers, so no code path can forget them:

- `doctors.schedule_version` changes with the working days, hours, slot length or active flag;
- `doctor_days.version` changes whenever an appointment on that day is added, moved, cancelled
  or removed, or a leave on that day is added, changed or removed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BUMP_DAY = """
CREATE FUNCTION bump_doctor_day_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO doctor_days AS d (doctor_id, date, version)
        VALUES (OLD.doctor_id, OLD.date, 1)
        ON CONFLICT (doctor_id, date) DO UPDATE SET version = d.version + 1;
    END IF;
    IF TG_OP = 'INSERT' OR (
        TG_OP = 'UPDATE' AND (NEW.doctor_id, NEW.date) IS DISTINCT FROM (OLD.doctor_id, OLD.date)
    ) THEN
        INSERT INTO doctor_days AS d (doctor_id, date, version)
        VALUES (NEW.doctor_id, NEW.date, 1)
        ON CONFLICT (doctor_id, date) DO UPDATE SET version = d.version + 1;
    END IF;
    RETURN NULL;
END;
$$
"""

_BUMP_SCHEDULE = """
CREATE FUNCTION bump_doctor_schedule_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.schedule_version := OLD.schedule_version + 1;
    RETURN NEW;
END;
$$
"""

# name -> (table, definition)
_TRIGGERS = {
    # Calendar-sync bookkeeping (event ids, sync status) does not change availability.
    "appointments_day_version": (
        "appointments",
        "AFTER INSERT OR DELETE OR UPDATE OF doctor_id, date, start_time, end_time, status "
        "ON appointments FOR EACH ROW EXECUTE FUNCTION bump_doctor_day_version()",
    ),
    "doctor_leaves_day_version": (
        "doctor_leaves",
        "AFTER INSERT OR UPDATE OR DELETE ON doctor_leaves "
        "FOR EACH ROW EXECUTE FUNCTION bump_doctor_day_version()",
    ),
    "doctors_schedule_version": (
        "doctors",
        "BEFORE UPDATE OF working_days, working_hours, slot_duration_minutes, is_active "
        "ON doctors FOR EACH ROW "
        "WHEN (OLD.working_days IS DISTINCT FROM NEW.working_days "
        "OR OLD.working_hours IS DISTINCT FROM NEW.working_hours "
        "OR OLD.slot_duration_minutes IS DISTINCT FROM NEW.slot_duration_minutes "
        "OR OLD.is_active IS DISTINCT FROM NEW.is_active) "
        "EXECUTE FUNCTION bump_doctor_schedule_version()",
    ),
}


def upgrade() -> None:
    op.add_column(
        "doctors",
        sa.Column("schedule_version", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "doctor_days",
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_doctor_days_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("doctor_id", "date", name=op.f("pk_doctor_days")),
    )
    op.execute(_BUMP_DAY)
    op.execute(_BUMP_SCHEDULE)
    for name, (_, definition) in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")


def downgrade() -> None:
    for name, (table, _) in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_doctor_schedule_version()")
    op.execute("DROP FUNCTION IF EXISTS bump_doctor_day_version()")
    op.drop_table("doctor_days")
    op.drop_column("doctors", "schedule_version")
