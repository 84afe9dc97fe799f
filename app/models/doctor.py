from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, updated_at_column, uuid_pk


class Doctor(Base):
    __tablename__ = "doctors"
    __table_args__ = (
        CheckConstraint("slot_duration_minutes BETWEEN 5 AND 480", name="slot_duration_range"),
        CheckConstraint("experience_years >= 0", name="experience_non_negative"),
        CheckConstraint("min_notice_minutes BETWEEN 0 AND 43200", name="min_notice_range"),
        CheckConstraint("booking_horizon_days BETWEEN 1 AND 730", name="horizon_range"),
        CheckConstraint("buffer_minutes BETWEEN 0 AND 240", name="buffer_range"),
        CheckConstraint("max_appointments_per_day BETWEEN 1 AND 500", name="daily_limit_range"),
        # The search's filter (`doctor_filters`): without it, a clinic group's every search
        # scans all its doctors (migration 0009).
        Index("ix_doctors_specialization", text("lower(specialization)")),
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
    # `weekly_hours` decides; `working_days`/`working_hours` are the request's summary of it,
    # always derived from it on write (app/schemas/schedule.py).
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    working_days: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    working_hours: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    slot_duration_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    visit_type_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid), nullable=False, server_default="{}"
    )
    min_notice_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    booking_horizon_days: Mapped[int | None] = mapped_column(Integer)
    buffer_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_appointments_per_day: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, index=True)
    # Kept by a trigger (migrations 0004, 0005): changes with every field that decides every
    # day's slots (hours, slot length, active flag, visit types, booking rules). Changes to
    # one day are in `doctor_days`.
    schedule_version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = updated_at_column()
