"""doctor schedule version

`doctors.schedule_version` changes whenever anything that decides the doctor's free slots
changes: an appointment is added, moved, cancelled or removed; a leave is added, changed or
removed; the working days, hours, slot length or active flag change. Triggers keep it, so no
code path can forget. A booking reads the day, decides with the availability engine, then
writes in one statement only if the version is still the one it read (see
app/services/booking_queries.py); the version's bump also takes the doctor's row lock, so
concurrent changes for one doctor are serialised.

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

_BUMP_FROM_ROW = """
CREATE FUNCTION bump_doctor_schedule_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE doctors SET schedule_version = schedule_version + 1 WHERE id = OLD.doctor_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.doctor_id IS DISTINCT FROM OLD.doctor_id)
    THEN
        UPDATE doctors SET schedule_version = schedule_version + 1 WHERE id = NEW.doctor_id;
    END IF;
    RETURN NULL;
END;
$$
"""

_BUMP_ON_SCHEDULE_EDIT = """
CREATE FUNCTION bump_own_schedule_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.schedule_version := OLD.schedule_version + 1;
    RETURN NEW;
END;
$$
"""

_TRIGGERS = {
    # Calendar-sync bookkeeping (event ids, sync status) does not change availability.
    "appointments_schedule_version": (
        "AFTER INSERT OR DELETE OR UPDATE OF doctor_id, date, start_time, end_time, status "
        "ON appointments FOR EACH ROW "
        "EXECUTE FUNCTION bump_doctor_schedule_version()"
    ),
    "doctor_leaves_schedule_version": (
        "AFTER INSERT OR UPDATE OR DELETE ON doctor_leaves FOR EACH ROW "
        "EXECUTE FUNCTION bump_doctor_schedule_version()"
    ),
    "doctors_schedule_version": (
        "BEFORE UPDATE OF working_days, working_hours, slot_duration_minutes, is_active "
        "ON doctors FOR EACH ROW "
        "WHEN (OLD.working_days IS DISTINCT FROM NEW.working_days "
        "OR OLD.working_hours IS DISTINCT FROM NEW.working_hours "
        "OR OLD.slot_duration_minutes IS DISTINCT FROM NEW.slot_duration_minutes "
        "OR OLD.is_active IS DISTINCT FROM NEW.is_active) "
        "EXECUTE FUNCTION bump_own_schedule_version()"
    ),
}
_TABLES = {
    "appointments_schedule_version": "appointments",
    "doctor_leaves_schedule_version": "doctor_leaves",
    "doctors_schedule_version": "doctors",
}


def upgrade() -> None:
    op.add_column(
        "doctors",
        sa.Column("schedule_version", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute(_BUMP_FROM_ROW)
    op.execute(_BUMP_ON_SCHEDULE_EDIT)
    for name, definition in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")


def downgrade() -> None:
    for name, table in _TABLES.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_own_schedule_version()")
    op.execute("DROP FUNCTION IF EXISTS bump_doctor_schedule_version()")
    op.drop_column("doctors", "schedule_version")
