"""Webhook endpoints and their delivery log (spec: "Webhooks"). Admin only, reads included:
an endpoint's url and the log say where patients' data goes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.database import ReadSessionDep, SessionDep
from app.models import WebhookEndpoint
from app.models.webhook import WebhookDeliveryStatus
from app.routes.deps import SettingsDep, error_responses
from app.schemas.common import Limit
from app.schemas.webhook import (
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from app.security import Role, allow
from app.services import webhook_service
from app.services.webhooks.events import WebhookEvent

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
ADMIN = [allow(Role.ADMIN)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> WebhookWithSecret:
    read = WebhookRead.model_validate(endpoint)
    return WebhookWithSecret(**read.model_dump(), secret=secret)


@router.post(
    "/",
    dependencies=ADMIN,
    status_code=201,
    responses=error_responses(),
)
@router.post("", dependencies=ADMIN, status_code=201, include_in_schema=False)
async def create_webhook(
    data: WebhookCreate, session: SessionDep, settings: SettingsDep
) -> WebhookWithSecret:
    """Its `secret` (`whsec_...`) is in this answer only: keep it where the receiver can read
    it."""
    endpoint, secret = await webhook_service.create(session, settings, data)
    return _with_secret(endpoint, secret)


@router.get("/", dependencies=ADMIN, responses=error_responses())
@router.get("", dependencies=ADMIN, include_in_schema=False)
async def list_webhooks(
    session: ReadSessionDep, limit: Annotated[Limit, Query()] = 100, offset: Offset = 0
) -> list[WebhookRead]:
    """Oldest first."""
    found = await webhook_service.list_all(session, limit=limit, offset=offset)
    return [WebhookRead.model_validate(endpoint) for endpoint in found]


@router.get(
    "/{webhook_id}",
    dependencies=ADMIN,
    responses=error_responses(404),
)
async def get_webhook(webhook_id: uuid.UUID, session: ReadSessionDep) -> WebhookRead:
    return WebhookRead.model_validate(await webhook_service.get(session, webhook_id))


@router.patch(
    "/{webhook_id}",
    dependencies=ADMIN,
    responses=error_responses(404),
)
async def update_webhook(
    webhook_id: uuid.UUID, data: WebhookUpdate, session: SessionDep, settings: SettingsDep
) -> WebhookRead:
    """Partial: only the fields sent change. `is_active: true` clears `disabled_reason` and
    sends the messages that waited."""
    endpoint = await webhook_service.update(session, settings, webhook_id, data)
    return WebhookRead.model_validate(endpoint)


@router.delete(
    "/{webhook_id}",
    dependencies=ADMIN,
    status_code=204,
    responses=error_responses(404),
)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep) -> Response:
    """Its messages not yet delivered are dropped."""
    await webhook_service.delete(session, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    dependencies=ADMIN,
    responses=error_responses(404),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, session: SessionDep, settings: SettingsDep
) -> WebhookWithSecret:
    """A new secret, shown this once; for 24 hours every message carries the old secret's
    signature too."""
    endpoint, secret = await webhook_service.rotate_secret(session, settings, webhook_id)
    return _with_secret(endpoint, secret)


@router.post(
    "/{webhook_id}/ping",
    dependencies=ADMIN,
    status_code=202,
    responses=error_responses(404, 409),
)
async def ping_webhook(webhook_id: uuid.UUID, session: SessionDep) -> WebhookDeliveryRead:
    """Send a `webhook.ping` (whatever the endpoint's `events`); the answer is its delivery."""
    delivery = await webhook_service.ping(session, webhook_id)
    return WebhookDeliveryRead.model_validate(delivery)


@router.get(
    "/{webhook_id}/deliveries",
    dependencies=ADMIN,
    responses=error_responses(404),
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    session: ReadSessionDep,
    status: WebhookDeliveryStatus | None = None,
    event: WebhookEvent | None = None,
    limit: Annotated[Limit, Query()] = 100,
    offset: Offset = 0,
) -> list[WebhookDeliveryRead]:
    """Newest first; `id` is the message's `webhook-id`."""
    found = await webhook_service.list_deliveries(
        session, webhook_id, status=status, event=event, limit=limit, offset=offset
    )
    return [WebhookDeliveryRead.model_validate(delivery) for delivery in found]


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    dependencies=ADMIN,
    status_code=202,
    responses=error_responses(404, 409),
)
async def retry_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: str, session: SessionDep
) -> WebhookDeliveryRead:
    """A `failed` delivery is sent again, its attempts counted anew."""
    delivery = await webhook_service.retry(session, webhook_id, delivery_id)
    return WebhookDeliveryRead.model_validate(delivery)
