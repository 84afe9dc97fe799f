from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class OutboxJob(Base):
    """A delivery owed to a mirror: Google Calendar, the RAG service or a webhook endpoint.

    Written in the same transaction as the change it mirrors. A job means "make the mirror
    match the current state of `aggregate_id`", read when it is delivered, so retries and
    reorderings can never bring back an old state. At most one job per aggregate waits at a
    time (later changes fold into it), and one per aggregate is in flight.
    """

    __tablename__ = "outbox_jobs"
    __table_args__ = (
        Index(
            "uq_outbox_jobs_pending_aggregate",
            "target",
            "aggregate_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_outbox_jobs_status_available_at", "status", "available_at"),
        Index("ix_outbox_jobs_target_aggregate_id", "target", "aggregate_id"),
        Index(
            "ix_outbox_jobs_pending_lane",
            "target",
            "lane",
            "available_at",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_outbox_jobs_in_progress_lane",
            "target",
            "lane",
            "locked_until",
            postgresql_where=text("status = 'in_progress'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(20), nullable=False)
    aggregate_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    # Jobs of one lane (a webhook endpoint) are delivered one at a time (`outbox.lanes`).
    lane: Mapped[uuid.UUID | None] = mapped_column()
    # pending -> in_progress -> done | failed (or back to pending to retry)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    available_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
