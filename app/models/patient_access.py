from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class PatientAccess(Base):
    """Append-only record of one answer that showed a patient's record or history: who, when,
    what, through which operation, and for which call (a trigger forbids edits and deletes)."""

    __tablename__ = "patient_access_log"
    __table_args__ = (Index("ix_patient_access_log_patient_id", "patient_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), nullable=False)
    accessed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    # `record` (the patient's own fields) or `history` (their medical history).
    what: Mapped[str] = mapped_column(String(20), nullable=False)
    # The operation that answered: `GET /api/v1/patients/{patient_id}`, `mcp find_patient`.
    via: Mapped[str] = mapped_column(String(100), nullable=False)
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(128))
