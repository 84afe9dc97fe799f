from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, SmallInteger, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, uuid_pk


class AppointmentSeries(Base):
    """A course of visits booked in one call, with its recurrence as answered (`repeat_interval`
    is the answer's `interval`, filled in; `count` or `until`, whichever was given). Its
    occurrences are ordinary appointments carrying `series_id`."""

    __tablename__ = "appointment_series"
    __table_args__ = (
        CheckConstraint("frequency IN ('daily', 'weekly')", name="frequency"),
        CheckConstraint("repeat_interval BETWEEN 1 AND 4", name="repeat_interval"),
        CheckConstraint("(count IS NULL) <> (until IS NULL)", name="count_or_until"),
        Index("ix_appointment_series_patient_id", "patient_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doctors.id"), nullable=False)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), nullable=False)
    start_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    start_time: Mapped[dt.time] = mapped_column(Time, nullable=False)
    visit_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visit_types.id"))
    frequency: Mapped[str] = mapped_column(String(8), nullable=False)
    repeat_interval: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    count: Mapped[int | None] = mapped_column(SmallInteger)
    until: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = created_at_column()
