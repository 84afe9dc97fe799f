from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, updated_at_column


class DoctorDateOverride(Base):
    """Different hours for one doctor on one date; `windows` empty closes the day.

    A trigger (migration 0005) moves the date's `doctor_days.version`, as for leaves."""

    __tablename__ = "doctor_date_overrides"

    doctor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("doctors.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    windows: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = updated_at_column()


class ClinicHoliday(Base):
    """A date the whole clinic is closed. A trigger (migration 0005) moves every doctor's
    `doctor_days.version` for that date, so bookings and remembered days see it at once."""

    __tablename__ = "clinic_holidays"

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = updated_at_column()
