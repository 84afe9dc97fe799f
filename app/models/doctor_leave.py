from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Time, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, uuid_pk


class DoctorLeave(Base):
    """A day off, or part of one when `start_time`/`end_time` are set."""

    __tablename__ = "doctor_leaves"
    __table_args__ = (
        CheckConstraint(
            "(start_time IS NULL AND end_time IS NULL) OR "
            "(start_time IS NOT NULL AND end_time IS NOT NULL AND start_time < end_time)",
            name="time_window",
        ),
        Index("ix_doctor_leaves_doctor_id_date", "doctor_id", "date"),
        # Overlaps of partial leaves are checked under the doctor's row lock; this index is the
        # database's own guard against two whole-day leaves on one date.
        Index(
            "uq_doctor_leaves_whole_day",
            "doctor_id",
            "date",
            unique=True,
            postgresql_where=text("start_time IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    doctor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("doctors.id", ondelete="CASCADE"), nullable=False
    )
    date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    start_time: Mapped[dt.time | None] = mapped_column(Time)
    end_time: Mapped[dt.time | None] = mapped_column(Time)
    created_at: Mapped[dt.datetime] = created_at_column()
