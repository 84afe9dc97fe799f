"""schedules: weekly hours, date overrides, clinic holidays, visit types, booking rules

- `doctors.weekly_hours` (seven weekdays of windows) becomes what decides a doctor's week;
  existing doctors get one window, their working hours, on each of their working days, so
  they behave exactly as before. The request's `working_days`/`working_hours` stay, derived.
- Booking rules and offered visit types are doctor columns; the schedule-version trigger now
  watches them too, so a booking decided under an old rule cannot commit.
- `doctor_date_overrides` and `clinic_holidays` move the affected `doctor_days.version`, like
  leaves and appointments do (migration 0004).

Code from before this migration cannot create doctors once it has run (`weekly_hours` has no
default): deploy the new code with it. A downgrade keeps each doctor's summary
(`working_days`/`working_hours`) and drops breaks and per-day hours.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# One window, the working hours, on each working day; no windows on the others.
_BACKFILL_WEEK = "UPDATE doctors SET weekly_hours = jsonb_build_object({})".format(
    ", ".join(
        f"'{day}', CASE WHEN working_days ? '{day}' "
        "THEN jsonb_build_array(working_hours) ELSE '[]'::jsonb END"
        for day in _WEEKDAYS
    )
)

_SCHEDULE_COLUMNS = (
    "weekly_hours",
    "working_days",
    "working_hours",
    "slot_duration_minutes",
    "is_active",
    "visit_type_ids",
    "min_notice_minutes",
    "booking_horizon_days",
    "buffer_minutes",
    "max_appointments_per_day",
)
_OLD_SCHEDULE_COLUMNS = _SCHEDULE_COLUMNS[1:5]


def _schedule_trigger(columns: Sequence[str]) -> str:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
    return (
        f"CREATE TRIGGER doctors_schedule_version BEFORE UPDATE OF {', '.join(columns)} "
        f"ON doctors FOR EACH ROW WHEN ({changed}) "
        "EXECUTE FUNCTION bump_doctor_schedule_version()"
    )


_BUMP_CLINIC_DAY = """
CREATE FUNCTION bump_clinic_day_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Every doctor, including one being created right now: doctors cannot be added or
    -- changed until this transaction ends (bookings and schedule edits of a doctor's days
    -- take lighter locks and go on), and one created before it has committed by now.
    LOCK TABLE doctors IN SHARE ROW EXCLUSIVE MODE;
    INSERT INTO doctor_days AS d (doctor_id, date, version)
    SELECT id, day, 1
      FROM doctors,
           unnest(CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW.date]
                             WHEN 'DELETE' THEN ARRAY[OLD.date]
                             ELSE ARRAY[OLD.date, NEW.date] END) AS day
     ORDER BY id, day
    ON CONFLICT (doctor_id, date) DO UPDATE SET version = d.version + 1;
    RETURN NULL;
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "visit_types",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "duration_minutes BETWEEN 5 AND 480", name=op.f("ck_visit_types_duration_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_types")),
    )
    op.create_index(
        "uq_visit_types_name_lower", "visit_types", [sa.text("lower(name)")], unique=True
    )

    op.add_column("doctors", sa.Column("weekly_hours", postgresql.JSONB(), nullable=True))
    op.execute(_BACKFILL_WEEK)
    op.alter_column("doctors", "weekly_hours", nullable=False)
    op.add_column(
        "doctors",
        sa.Column(
            "visit_type_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False
        ),
    )
    op.add_column(
        "doctors",
        sa.Column("min_notice_minutes", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("doctors", sa.Column("booking_horizon_days", sa.Integer(), nullable=True))
    op.add_column(
        "doctors", sa.Column("buffer_minutes", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("doctors", sa.Column("max_appointments_per_day", sa.Integer(), nullable=True))
    for name, condition in (
        ("min_notice_range", "min_notice_minutes BETWEEN 0 AND 43200"),
        ("horizon_range", "booking_horizon_days BETWEEN 1 AND 730"),
        ("buffer_range", "buffer_minutes BETWEEN 0 AND 240"),
        ("daily_limit_range", "max_appointments_per_day BETWEEN 1 AND 500"),
    ):
        op.create_check_constraint(op.f(f"ck_doctors_{name}"), "doctors", condition)
    op.execute("DROP TRIGGER doctors_schedule_version ON doctors")
    op.execute(_schedule_trigger(_SCHEDULE_COLUMNS))

    op.add_column("appointments", sa.Column("visit_type_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_appointments_visit_type_id_visit_types"),
        "appointments",
        "visit_types",
        ["visit_type_id"],
        ["id"],
    )

    op.create_table(
        "doctor_date_overrides",
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("windows", postgresql.JSONB(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_doctor_date_overrides_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("doctor_id", "date", name=op.f("pk_doctor_date_overrides")),
    )
    op.execute(
        "CREATE TRIGGER doctor_date_overrides_day_version "
        "AFTER INSERT OR UPDATE OF doctor_id, date, windows OR DELETE ON doctor_date_overrides "
        "FOR EACH ROW EXECUTE FUNCTION bump_doctor_day_version()"
    )

    op.create_table(
        "clinic_holidays",
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("date", name=op.f("pk_clinic_holidays")),
    )
    op.execute(_BUMP_CLINIC_DAY)
    op.execute(
        "CREATE TRIGGER clinic_holidays_day_version "
        "AFTER INSERT OR UPDATE OF date OR DELETE ON clinic_holidays "
        "FOR EACH ROW EXECUTE FUNCTION bump_clinic_day_version()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS clinic_holidays_day_version ON clinic_holidays")
    op.execute("DROP FUNCTION IF EXISTS bump_clinic_day_version()")
    op.drop_table("clinic_holidays")
    op.execute("DROP TRIGGER IF EXISTS doctor_date_overrides_day_version ON doctor_date_overrides")
    op.drop_table("doctor_date_overrides")
    op.drop_constraint(
        op.f("fk_appointments_visit_type_id_visit_types"), "appointments", type_="foreignkey"
    )
    op.drop_column("appointments", "visit_type_id")
    op.execute("DROP TRIGGER doctors_schedule_version ON doctors")
    op.execute(_schedule_trigger(_OLD_SCHEDULE_COLUMNS))
    for name in ("min_notice_range", "horizon_range", "buffer_range", "daily_limit_range"):
        op.drop_constraint(op.f(f"ck_doctors_{name}"), "doctors", type_="check")
    for column in (
        "max_appointments_per_day",
        "buffer_minutes",
        "booking_horizon_days",
        "min_notice_minutes",
        "visit_type_ids",
        "weekly_hours",
    ):
        op.drop_column("doctors", column)
    op.drop_index("uq_visit_types_name_lower", table_name="visit_types")
    op.drop_table("visit_types")
