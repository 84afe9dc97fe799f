"""confirmations and reminders: an appointment's confirmation, the clinic's reminder policy, and
each appointment's reminders

`appointments` gains `confirmation_status` and `confirmed_at` (a constant default: no table
rewrite). `reminder_policy` holds one row, the clinic's, with the spec's defaults as its
column defaults (`version` moves on every change; `planned_version` is the last version whose
replan of existing appointments has finished, none yet: the appointments booked before this
revision get their reminders from the first replan). `reminders` is keyed by (appointment, offset,
start time): that key is sent at most once. The partial index on `scheduled` reminders by due
instant is the dispatcher's sweep; the replan after a policy change walks each doctor's
upcoming appointments on the existing (doctor, date, start) index, so booking pays for no new
index on `appointments`.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE appointment_action ADD VALUE IF NOT EXISTS 'confirmed'")
    op.add_column(
        "appointments",
        sa.Column(
            "confirmation_status",
            sa.Text(),
            nullable=False,
            server_default="unconfirmed",
        ),
    )
    op.add_column("appointments", sa.Column("confirmed_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        op.f("ck_appointments_confirmation_status_known"),
        "appointments",
        "confirmation_status IN ('unconfirmed', 'confirmed')",
    )
    op.create_table(
        "reminder_policy",
        sa.Column("id", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "offsets_minutes",
            postgresql.ARRAY(sa.Integer()),
            nullable=False,
            server_default=sa.text("'{1440,120}'"),
        ),
        sa.Column("quiet_start", sa.Time(), server_default=sa.text("'20:00'")),
        sa.Column("quiet_end", sa.Time(), server_default=sa.text("'08:00'")),
        sa.Column("only_unconfirmed", sa.Boolean(), nullable=False, server_default="true"),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("planned_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("replan_lease_until", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_policy")),
        sa.CheckConstraint("id", name=op.f("ck_reminder_policy_one_row")),
        sa.CheckConstraint(
            "(quiet_start IS NULL) = (quiet_end IS NULL)",
            name=op.f("ck_reminder_policy_quiet_both"),
        ),
    )
    # Nothing planned yet (`planned_version` 0): the dispatchers' replan plans the reminders of
    # the appointments already booked, in batches, once the service runs this revision.
    op.execute("INSERT INTO reminder_policy (planned_version) VALUES (0)")
    op.create_table(
        "reminders",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint(
            "appointment_id", "offset_minutes", "starts_at", name=op.f("pk_reminders")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            ondelete="CASCADE",
            name=op.f("fk_reminders_appointment_id_appointments"),
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sent', 'skipped', 'void')",
            name=op.f("ck_reminders_status_known"),
        ),
    )
    op.create_index(
        "ix_reminders_due",
        "reminders",
        ["due_at"],
        postgresql_where=sa.text("status = 'scheduled'"),
    )


def downgrade() -> None:
    op.drop_index("ix_reminders_due", table_name="reminders")
    op.drop_table("reminders")
    op.drop_table("reminder_policy")
    op.drop_constraint(
        op.f("ck_appointments_confirmation_status_known"), "appointments", type_="check"
    )
    op.drop_column("appointments", "confirmed_at")
    op.drop_column("appointments", "confirmation_status")
