from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base
from app.models.enums import AppointmentAction, AppointmentSource


class AppointmentEvent(Base):
    """Append-only audit record of one change to an appointment (a trigger forbids edits)."""

    __tablename__ = "appointment_events"
    __table_args__ = (Index("ix_appointment_events_appointment_id", "appointment_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"), nullable=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    action: Mapped[AppointmentAction] = mapped_column(
        Enum(
            AppointmentAction,
            name="appointment_action",
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    source: Mapped[AppointmentSource] = mapped_column(
        Enum(
            AppointmentSource,
            name="appointment_source",
            values_callable=lambda e: [m.value for m in e],
            create_type=False,
        ),
        nullable=False,
    )
    correlation_id: Mapped[str | None] = mapped_column(String(200))
