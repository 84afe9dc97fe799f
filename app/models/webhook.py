from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_column, updated_at_column, uuid_pk

# `msg_` and 22 url-safe characters (a random UUID's 16 bytes), made by the database, so a
# message queued inside any statement (the booking statement too) gets its id the same way.
MESSAGE_ID_DEFAULT = (
    "'msg_' || translate(rtrim(encode(uuid_send(gen_random_uuid()), 'base64'), '='), '+/', '-_')"
)


class WebhookDeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(Base):
    """A receiver of webhook messages: where, which event types, and its signing secrets.

    `secret` and `previous_secret` are stored sealed (`services.webhooks.secret_box`), never
    as the `whsec_` text the caller was shown; the previous one signs too until it expires.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (CheckConstraint("cardinality(events) > 0", name="events_not_empty"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    url: Mapped[str] = mapped_column(Text, nullable=False)
    events: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = created_at_column()
    updated_at: Mapped[dt.datetime] = updated_at_column()


class WebhookDelivery(Base):
    """One message to one endpoint (its outbox job: target `webhook`, aggregate this row's
    id). The body is built from `event`, `occurred_at` and `data` at each attempt, so every
    attempt sends the same bytes under the same `message_id`."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        Index(
            "ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", text("created_at DESC")
        ),
        # `/ready` counts what is still owed or failed; delivered messages are most rows.
        Index(
            "ix_webhook_deliveries_undelivered",
            "status",
            postgresql_where=text("status <> 'delivered'"),
        ),
        # A patient's deletion sets their messages' `patient_id` to null through this.
        Index(
            "ix_webhook_deliveries_patient_id",
            "patient_id",
            postgresql_where=text("patient_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )
    message_id: Mapped[str] = mapped_column(
        Text, nullable=False, unique=True, server_default=text(MESSAGE_ID_DEFAULT)
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL")
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    status: Mapped[str] = mapped_column(
        Text, nullable=False, server_default=WebhookDeliveryStatus.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = created_at_column()
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
