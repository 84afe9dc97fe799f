from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, updated_at_column, uuid_pk


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    BOOKED = "booked"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OfferOutcome(enum.StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    GONE = "gone"  # the hold had expired and someone else took the slot before the accept
    WITHDRAWN = "withdrawn"  # the entry was cancelled or expired while offered


class WaitlistEntry(Base):
    """A patient waiting for a freed slot that fits: a doctor or criteria, dates, weekdays,
    times; or an earlier slot for `appointment_id`. While `offered`, `hold_id` is the hold
    that keeps the slot offered (migration 0014 keeps the two together)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'offered', 'booked', 'cancelled', 'expired')", name="status"
        ),
        CheckConstraint("start_date <= end_date", name="date_order"),
        CheckConstraint("(status = 'offered') = (hold_id IS NOT NULL)", name="offer_held"),
        Index(
            "ix_waitlist_entries_waiting",
            "created_at",
            "id",
            postgresql_where=text("status = 'waiting'"),
        ),
        Index(
            "ix_waitlist_entries_waiting_end_date",
            "end_date",
            postgresql_where=text("status = 'waiting'"),
        ),
        Index(
            "ix_waitlist_entries_offered_hold_id",
            "hold_id",
            postgresql_where=text("status = 'offered'"),
        ),
        Index(
            "ix_waitlist_entries_appointment_id",
            "appointment_id",
            postgresql_where=text("appointment_id IS NOT NULL"),
        ),
        Index("ix_waitlist_entries_patient_id", "patient_id"),
        Index("ix_waitlist_entries_doctor_id", "doctor_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), nullable=False)
    doctor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("doctors.id", ondelete="CASCADE")
    )
    specialization: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(100))
    consultation_type: Mapped[str | None] = mapped_column(String(100))
    visit_type_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("visit_types.id"))
    start_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    end_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    weekdays: Mapped[list[str] | None] = mapped_column(ARRAY(String(10)))
    # [{"start": "HH:MM", "end": "HH:MM"}, ...] sorted by start; null: any time.
    times: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    notes: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="waiting")
    hold_id: Mapped[uuid.UUID | None] = mapped_column()
    booked_appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    # Who asked: the API key's name and the call's correlation id (kept on its offers' holds).
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    # The clock's time, not the transaction's: entries are served oldest first, and two made
    # in one transaction (or one test's) still have an order.
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()
    )
    updated_at: Mapped[dt.datetime] = updated_at_column()


class WaitlistOffer(Base):
    """A slot offered to an entry (held by `hold_id`), and what came of it. A slot is offered
    to an entry once, ever; an entry has at most one `open` offer."""

    __tablename__ = "waitlist_offers"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('open', 'accepted', 'declined', 'expired', 'gone', 'withdrawn')",
            name="outcome",
        ),
        UniqueConstraint("entry_id", "doctor_id", "date", "start_time"),
        Index(
            "uq_waitlist_offers_open_entry",
            "entry_id",
            unique=True,
            postgresql_where=text("outcome = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("waitlist_entries.id", ondelete="CASCADE"), nullable=False
    )
    hold_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    doctor_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    start_time: Mapped[dt.time] = mapped_column(Time, nullable=False)
    end_time: Mapped[dt.time] = mapped_column(Time, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, server_default="open")
    offered_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
