"""Webhook endpoints and their delivery log (spec: "Webhooks"). `secret` appears only in the
answers of create and rotate-secret."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.models.webhook import WebhookDeliveryStatus
from app.schemas.common import InputModel, PartialUpdate
from app.services.webhooks.events import WebhookEvent

URL_MAX = 2048
WebhookUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_MAX)
]
Description = Annotated[str, Field(max_length=2000)]
_KNOWN = frozenset(event.value for event in WebhookEvent)


def _event_types(value: Any) -> Any:
    """`events` as a whole: a non-empty list of distinct known types, or one error naming
    the field (not the position of the item)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of event types")
    if not value:
        raise ValueError("must name at least one event type")
    unknown = [item for item in value if item not in _KNOWN]
    if unknown:
        known = ", ".join(event.value for event in WebhookEvent)
        raise ValueError(f"unknown event type {unknown[0]!r}; known: {known}")
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ValueError(f"event type {repeated[0]!r} is listed more than once")
    return value


class WebhookCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "url": "https://crm.example.com/hooks/clinic",
                "events": ["appointment.booked", "appointment.cancelled"],
                "description": "CRM",
            }
        }
    )

    url: WebhookUrl
    events: list[WebhookEvent]
    description: Description | None = None

    @field_validator("events", mode="before")
    @classmethod
    def _check_events(cls, value: Any) -> Any:
        return _event_types(value)


class WebhookUpdate(PartialUpdate):
    """Partial update: only the fields present change."""

    nullable = frozenset({"description"})

    url: WebhookUrl | None = None
    events: list[WebhookEvent] | None = None
    description: Description | None = None
    is_active: bool | None = None

    @field_validator("events", mode="before")
    @classmethod
    def _check_events(cls, value: Any) -> Any:
        return value if value is None else _event_types(value)


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[WebhookEvent]
    description: str | None
    is_active: bool
    disabled_reason: str | None
    created_at: dt.datetime


class WebhookWithSecret(WebhookRead):
    """An endpoint with its signing secret: the one time the caller sees it."""

    secret: str


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(validation_alias="message_id", description="the message's `webhook-id`")
    event: WebhookEvent
    status: WebhookDeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
