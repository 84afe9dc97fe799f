from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, String, Time, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, updated_at_column, uuid_pk


class Hold(Base):
    """A slot kept for a caller until `expires_at`: while `active` and unexpired it counts as an
    appointment for everyone else. A trigger (migration 0006) moves the date's
    `doctor_days.version` when a hold is made, booked, released or its expiry is edited."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("start_time < end_time", name="time_order"),
        CheckConstraint("status IN ('active', 'booked', 'released')", name="status"),
        Index(
            "ix_holds_doctor_id_date_active",
            "doctor_id",
            "date",
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_holds_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    doctor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("doctors.id", ondelete="CASCADE"), nullable=False
    )
    date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    start_time: Mapped[dt.time] = mapped_column(Time, nullable=False)
    end_time: Mapped[dt.time] = mapped_column(Time, nullable=False)
    visit_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visit_types.id"))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    # Who asked: the API key's name and the caller's correlation id (an agent's call id).
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = updated_at_column()
