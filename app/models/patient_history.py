from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ARRAY, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, uuid_pk


class PatientHistory(Base):
    __tablename__ = "patient_history"
    __table_args__ = (Index("ix_patient_history_patient_created", "patient_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), nullable=False
    )
    symptoms: Mapped[str | None] = mapped_column(Text)
    medical_conditions: Mapped[list[str]] = mapped_column(
        ARRAY(String(500)), nullable=False, default=list
    )
    allergies: Mapped[list[str]] = mapped_column(ARRAY(String(500)), nullable=False, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
