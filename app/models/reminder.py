"""The clinic's reminder policy (one row) and each appointment's reminders."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    Time,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ReminderPolicy(Base):
    """When reminders come due: minutes before the start, moved out of the quiet hours (clinic
    time, `[quiet_start, quiet_end)`, crossing midnight when the start is the later time).

    One row (`id` is always true); its column defaults are the spec's defaults. `version`
    moves on every change, and every reminder records the version it was planned with;
    `planned_version` is the last version whose replan of existing appointments has
    finished (`reminders.replan`), which a dispatcher holds by `replan_lease_until`."""

    __tablename__ = "reminder_policy"
    __table_args__ = (
        CheckConstraint("id", name="one_row"),
        CheckConstraint("(quiet_start IS NULL) = (quiet_end IS NULL)", name="quiet_both"),
    )

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    offsets_minutes: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), nullable=False, server_default=text("'{1440,120}'")
    )
    quiet_start: Mapped[dt.time | None] = mapped_column(Time, server_default=text("'20:00'"))
    quiet_end: Mapped[dt.time | None] = mapped_column(Time, server_default=text("'08:00'"))
    only_unconfirmed: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("true")
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    planned_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))
    replan_lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class Reminder(Base):
    """One reminder of an appointment: for one offset of the policy and one start time of
    the appointment (a moved appointment's old start keeps its rows, `void` unless sent).
    The key is what is sent at most once."""

    __tablename__ = "reminders"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'sent', 'skipped', 'void')", name="status_known"),
        # The dispatcher's sweep: the scheduled reminders by due instant.
        Index("ix_reminders_due", "due_at", postgresql_where=text("status = 'scheduled'")),
    )

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True
    )
    offset_minutes: Mapped[int] = mapped_column(Integer, primary_key=True)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    policy_version: Mapped[int] = mapped_column(Integer, nullable=False)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
