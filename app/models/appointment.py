from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    Time,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, updated_at_column, uuid_pk
from app.models.enums import (
    AppointmentSource,
    AppointmentStatus,
    CalendarSyncStatus,
    ConfirmationStatus,
    active_status_sql,
)


def _pg_enum(enum_cls: type, name: str) -> Enum:
    return Enum(enum_cls, name=name, values_callable=lambda e: [m.value for m in e])


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("start_time < end_time", name="time_order"),
        CheckConstraint(
            "confirmation_status IN ('unconfirmed', 'confirmed')", name="confirmation_status_known"
        ),
        Index("ix_appointments_doctor_id_date", "doctor_id", "date", "start_time"),
        Index("ix_appointments_patient_id_date", "patient_id", "date", "start_time"),
        Index(
            "ix_appointments_series_id",
            "series_id",
            postgresql_where=text("series_id IS NOT NULL"),
        ),
        # The last line of defence against double booking: whatever slips past the doctor's
        # row lock cannot commit a second active appointment at the same start. It carries
        # end_time so availability reads are index-only scans.
        Index(
            "uq_appointments_active_slot",
            "doctor_id",
            "date",
            "start_time",
            unique=True,
            postgresql_where=text(active_status_sql()),
            postgresql_include=["end_time"],
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    doctor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("doctors.id"), nullable=False)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), nullable=False)
    date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    start_time: Mapped[dt.time] = mapped_column(Time, nullable=False)
    end_time: Mapped[dt.time] = mapped_column(Time, nullable=False)
    status: Mapped[AppointmentStatus] = mapped_column(
        _pg_enum(AppointmentStatus, "appointment_status"), nullable=False
    )
    # None: a visit of the doctor's slot length, as the request describes.
    visit_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visit_types.id"))
    source: Mapped[AppointmentSource] = mapped_column(
        _pg_enum(AppointmentSource, "appointment_source"), nullable=False
    )
    google_calendar_event_id: Mapped[str | None] = mapped_column(String(1024))
    # The calendar (doctor e-mail) the event was written to, so an e-mail change can move it.
    google_calendar_id: Mapped[str | None] = mapped_column(String(320))
    calendar_sync_status: Mapped[CalendarSyncStatus] = mapped_column(
        _pg_enum(CalendarSyncStatus, "calendar_sync_status"), nullable=False
    )
    calendar_sync_error: Mapped[str | None] = mapped_column(Text)
    # The recurring series it was booked in (None: a single booking); kept when it is moved.
    series_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointment_series.id"))
    # The patient agreed to this time (`unconfirmed` again once it moves without agreement).
    confirmation_status: Mapped[ConfirmationStatus] = mapped_column(
        Text, nullable=False, server_default=ConfirmationStatus.UNCONFIRMED.value
    )
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = updated_at_column()
