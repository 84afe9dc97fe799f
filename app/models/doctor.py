from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Boolean, CheckConstraint, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, updated_at_column, uuid_pk


class Doctor(Base):
    __tablename__ = "doctors"
    __table_args__ = (
        CheckConstraint("slot_duration_minutes BETWEEN 5 AND 480", name="slot_duration_range"),
        CheckConstraint("experience_years >= 0", name="experience_non_negative"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    clinic_id: Mapped[uuid.UUID] = mapped_column(nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # Lower-cased on write: it doubles as the Google Calendar id.
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    specialization: Mapped[str] = mapped_column(String(200), nullable=False)
    experience_years: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(100)), nullable=False, default=list)
    consultation_type: Mapped[str] = mapped_column(String(100), nullable=False)
    general_working_days_text: Mapped[str | None] = mapped_column(Text)
    working_days: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    working_hours: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    slot_duration_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, index=True)
    # Kept by a trigger (migration 0004): changes with the working days, hours, slot length or
    # active flag, which decide every day's slots. Changes to one day are in `doctor_days`.
    schedule_version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = updated_at_column()
