from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Date, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class DoctorDay(Base):
    """How many times one doctor's day has changed; kept by triggers (migration 0004).

    A booking writes only if the day's version is still the one it read, so two bookings for
    one doctor on different days never wait for each other. A missing row means version 0.
    """

    __tablename__ = "doctor_days"

    doctor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("doctors.id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
