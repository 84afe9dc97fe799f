"""waitlist: patients waiting for a freed slot, the slots offered to them, and the signal
that a doctor's slots may have come free

`waitlist_entries` are the patients waiting (oldest first); `waitlist_offers` every slot ever
offered to an entry (never offered to it again), with what came of it. The offer itself is
a hold (migration 0006).

A slot comes free in many ways (a cancel, a move, a hold released, a leave removed, an
override, a holiday removed, new weekly hours or rules). Like the version triggers of 0004,
one trigger per table says so, so no code path can forget it: it queues a `waitlist` outbox
job for the doctor (at most one waits per doctor, later changes fold into it) and wakes the
dispatchers, only while some entry is waiting (one probe of a partial index). The matcher
then offers the slots (app/services/waitlist/). Time frees slots too (a hold expiring, the
booking horizon moving on): the matcher's sweep looks for those.

The entry of an appointment the patient wants earlier is cancelled with that appointment,
by the same trigger on `appointments`, in the cancelling transaction.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "('BOOKED', 'RESCHEDULED', 'CHECKED_IN', 'COMPLETED')"

# Queue the matcher for `doctor` (uuid), while someone waits. The job's shape is
# `app.services.outbox.jobs.queue_jobs`'s (one pending job per aggregate; NOTIFY on commit).
_QUEUE = """
CREATE FUNCTION waitlist_queue_doctor(doctor uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM waitlist_entries WHERE status = 'waiting') THEN
        INSERT INTO outbox_jobs (target, aggregate_id) VALUES ('waitlist', doctor)
        ON CONFLICT (target, aggregate_id) WHERE status = 'pending' DO NOTHING;
        PERFORM pg_notify('outbox', 'waitlist');
    END IF;
END;
$$
"""

_APPOINTMENT_CHANGED = """
CREATE FUNCTION waitlist_appointment_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'CANCELLED' THEN
        -- The patient no longer has the visit they wanted earlier: the entry goes with it.
        UPDATE waitlist_offers SET outcome = 'withdrawn', answered_at = now()
         WHERE outcome = 'open' AND entry_id IN (
               SELECT id FROM waitlist_entries
                WHERE appointment_id = NEW.id AND status = 'offered');
        UPDATE holds SET status = 'released', updated_at = now()
         WHERE status = 'active' AND id IN (
               SELECT hold_id FROM waitlist_entries
                WHERE appointment_id = NEW.id AND status = 'offered');
        UPDATE waitlist_entries SET status = 'cancelled', hold_id = NULL, updated_at = now()
         WHERE appointment_id = NEW.id AND status IN ('waiting', 'offered');
    END IF;
    PERFORM waitlist_queue_doctor(OLD.doctor_id);
    RETURN NULL;
END;
$$
"""

_DOCTOR_OF_ROW = """
CREATE FUNCTION waitlist_doctor_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM waitlist_queue_doctor(OLD.doctor_id);
    ELSE
        PERFORM waitlist_queue_doctor(NEW.doctor_id);
    END IF;
    RETURN NULL;
END;
$$
"""

_DOCTOR_CHANGED = """
CREATE FUNCTION waitlist_doctor_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM waitlist_queue_doctor(NEW.id);
    RETURN NULL;
END;
$$
"""

_HOLIDAY_REMOVED = """
CREATE FUNCTION waitlist_holiday_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM waitlist_queue_doctor(id) FROM doctors WHERE is_active ORDER BY id;
    RETURN NULL;
END;
$$
"""

# name -> (table, definition). Each fires only on a change that can free a slot.
_TRIGGERS = {
    # Named after `appointments_day_version`, so it runs after the day's version moved.
    "appointments_waitlist": (
        "appointments",
        "AFTER UPDATE OF doctor_id, date, start_time, end_time, status ON appointments "
        f"FOR EACH ROW WHEN (OLD.status IN {_ACTIVE} AND (NEW.status NOT IN {_ACTIVE} "
        "OR (NEW.doctor_id, NEW.date, NEW.start_time, NEW.end_time) IS DISTINCT FROM "
        "(OLD.doctor_id, OLD.date, OLD.start_time, OLD.end_time))) "
        "EXECUTE FUNCTION waitlist_appointment_changed()",
    ),
    "holds_waitlist": (
        "holds",
        "AFTER UPDATE OF status ON holds FOR EACH ROW "
        "WHEN (OLD.status = 'active' AND NEW.status = 'released') "
        "EXECUTE FUNCTION waitlist_doctor_row_changed()",
    ),
    "doctor_leaves_waitlist": (
        "doctor_leaves",
        "AFTER UPDATE OR DELETE ON doctor_leaves FOR EACH ROW "
        "EXECUTE FUNCTION waitlist_doctor_row_changed()",
    ),
    "doctor_date_overrides_waitlist": (
        "doctor_date_overrides",
        "AFTER INSERT OR UPDATE OR DELETE ON doctor_date_overrides FOR EACH ROW "
        "EXECUTE FUNCTION waitlist_doctor_row_changed()",
    ),
    "clinic_holidays_waitlist": (
        "clinic_holidays",
        "AFTER UPDATE OF date OR DELETE ON clinic_holidays FOR EACH ROW "
        "EXECUTE FUNCTION waitlist_holiday_removed()",
    ),
    "doctors_waitlist": (
        "doctors",
        "AFTER UPDATE ON doctors FOR EACH ROW WHEN ("
        "OLD.schedule_version IS DISTINCT FROM NEW.schedule_version "
        "OR OLD.visit_type_ids IS DISTINCT FROM NEW.visit_type_ids "
        "OR OLD.specialization IS DISTINCT FROM NEW.specialization "
        "OR OLD.languages IS DISTINCT FROM NEW.languages "
        "OR OLD.consultation_type IS DISTINCT FROM NEW.consultation_type) "
        "EXECUTE FUNCTION waitlist_doctor_changed()",
    ),
}
_FUNCTIONS = (
    "waitlist_appointment_changed()",
    "waitlist_doctor_row_changed()",
    "waitlist_doctor_changed()",
    "waitlist_holiday_removed()",
    "waitlist_queue_doctor(uuid)",
)


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=True),
        sa.Column("specialization", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=100), nullable=True),
        sa.Column("consultation_type", sa.String(length=100), nullable=True),
        sa.Column("visit_type_id", sa.Uuid(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("weekdays", postgresql.ARRAY(sa.String(length=10)), nullable=True),
        sa.Column("times", postgresql.JSONB(), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("notes", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="waiting", nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=True),
        sa.Column("booked_appointment_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.clock_timestamp(),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('waiting', 'offered', 'booked', 'cancelled', 'expired')",
            name=op.f("ck_waitlist_entries_status"),
        ),
        sa.CheckConstraint("start_date <= end_date", name=op.f("ck_waitlist_entries_date_order")),
        sa.CheckConstraint(
            "(status = 'offered') = (hold_id IS NOT NULL)",
            name=op.f("ck_waitlist_entries_offer_held"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_waitlist_entries_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_waitlist_entries_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_type_id"],
            ["visit_types.id"],
            name=op.f("fk_waitlist_entries_visit_type_id_visit_types"),
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_waitlist_entries_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["booked_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_waitlist_entries_booked_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
    )
    # The waiting, oldest first: the matcher's order, and the triggers' "anyone waiting?".
    op.create_index(
        "ix_waitlist_entries_waiting",
        "waitlist_entries",
        ["created_at", "id"],
        postgresql_where=sa.text("status = 'waiting'"),
    )
    # The last date anyone waits for: how far ahead a round reads the doctors' days.
    op.create_index(
        "ix_waitlist_entries_waiting_end_date",
        "waitlist_entries",
        ["end_date"],
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.create_index(
        "ix_waitlist_entries_offered_hold_id",
        "waitlist_entries",
        ["hold_id"],
        postgresql_where=sa.text("status = 'offered'"),
    )
    op.create_index(
        "ix_waitlist_entries_appointment_id",
        "waitlist_entries",
        ["appointment_id"],
        postgresql_where=sa.text("appointment_id IS NOT NULL"),
    )
    op.create_index("ix_waitlist_entries_patient_id", "waitlist_entries", ["patient_id"])
    op.create_index("ix_waitlist_entries_doctor_id", "waitlist_entries", ["doctor_id"])

    op.create_table(
        "waitlist_offers",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        # open (the entry is offered it), accepted, declined, expired, gone (taken meanwhile),
        # withdrawn (the entry was cancelled or expired).
        sa.Column("outcome", sa.String(length=16), server_default="open", nullable=False),
        sa.Column(
            "offered_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('open', 'accepted', 'declined', 'expired', 'gone', 'withdrawn')",
            name=op.f("ck_waitlist_offers_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["waitlist_entries.id"],
            name=op.f("fk_waitlist_offers_entry_id_waitlist_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_offers")),
        # A slot is offered to an entry once, ever.
        sa.UniqueConstraint(
            "entry_id",
            "doctor_id",
            "date",
            "start_time",
            name=op.f("uq_waitlist_offers_entry_id_doctor_id_date_start_time"),
        ),
    )
    # At most one open offer per entry.
    op.create_index(
        "uq_waitlist_offers_open_entry",
        "waitlist_offers",
        ["entry_id"],
        unique=True,
        postgresql_where=sa.text("outcome = 'open'"),
    )

    for function in (
        _QUEUE,
        _APPOINTMENT_CHANGED,
        _DOCTOR_OF_ROW,
        _DOCTOR_CHANGED,
        _HOLIDAY_REMOVED,
    ):
        op.execute(function)
    for name, (_, definition) in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")


def downgrade() -> None:
    for name, (table, _) in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for function in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_table("waitlist_offers")
    op.drop_table("waitlist_entries")
