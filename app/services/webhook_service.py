"""Webhooks, the door: endpoints (create, read, change, delete, rotate the secret, ping), the
delivery log and retrying a failed delivery. The machinery (queueing messages, signing,
sealing secrets, the address guard, delivery) is in `services/webhooks/`.

An endpoint's secret is shown once, by create and rotate-secret, and stored sealed. A url is
checked by the SSRF guard before anything is written.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import InvalidState, NotFound
from app.models import WebhookDelivery, WebhookEndpoint
from app.models.webhook import WebhookDeliveryStatus
from app.schemas.webhook import WebhookCreate, WebhookUpdate
from app.services.outbox import jobs
from app.services.webhooks import events
from app.services.webhooks.address import check_url
from app.services.webhooks.events import WebhookEvent
from app.services.webhooks.secret_box import box_for
from app.services.webhooks.signing import new_secret

# After a rotation the old secret signs too, for this long, so receivers can switch over.
SECRET_OVERLAP = dt.timedelta(hours=24)


async def create(
    session: AsyncSession, settings: Settings, data: WebhookCreate
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret (`whsec_...`), which is never shown again."""
    await check_url(data.url, settings)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=data.url,
        events=[event.value for event in data.events],
        description=data.description,
        is_active=True,
        secret=box_for(settings).seal(secret),
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


async def get(
    session: AsyncSession, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=lock or None)
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} was not found.")
    return endpoint


async def list_all(session: AsyncSession, *, limit: int, offset: int) -> list[WebhookEndpoint]:
    """Oldest first."""
    query = (
        select(WebhookEndpoint)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(query)).scalars())


async def update(
    session: AsyncSession, settings: Settings, endpoint_id: uuid.UUID, data: WebhookUpdate
) -> WebhookEndpoint:
    """Partial update. Disabling holds the endpoint's pending messages back; enabling clears
    `disabled_reason` and makes them due at once."""
    changes = data.model_dump(exclude_unset=True)
    if "url" in changes:
        await check_url(changes["url"], settings)
    endpoint = await get(session, endpoint_id, lock=True)
    was_active = endpoint.is_active
    if "events" in changes:
        changes["events"] = [event.value for event in changes["events"]]
    for field, value in changes.items():
        setattr(endpoint, field, value)
    if changes.get("is_active") is True:
        endpoint.disabled_reason = None
    await session.flush()
    if was_active and not endpoint.is_active:
        await events.hold_back(session, endpoint.id)
    elif endpoint.is_active and not was_active:
        await events.wake(session, endpoint.id)
    await session.refresh(endpoint)
    return endpoint


async def delete(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """The endpoint goes, and with it every message not yet delivered (and the log)."""
    await events.drop(session, endpoint_id)
    deleted = await session.execute(
        text("DELETE FROM webhook_endpoints WHERE id = :id RETURNING id"), {"id": endpoint_id}
    )
    if deleted.first() is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} was not found.")


async def rotate_secret(
    session: AsyncSession, settings: Settings, endpoint_id: uuid.UUID
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the one it replaces keeps signing for `SECRET_OVERLAP`."""
    endpoint = await get(session, endpoint_id, lock=True)
    secret = new_secret()
    now = await session.scalar(text("SELECT now()"))
    assert now is not None
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + SECRET_OVERLAP
    endpoint.secret = box_for(settings).seal(secret)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint, secret


async def ping(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookDelivery:
    """Queue a `webhook.ping` to this endpoint, whatever its events; the delivery."""
    endpoint = await get(session, endpoint_id)
    if not endpoint.is_active:
        raise InvalidState("This endpoint is disabled; enable it (is_active true) to ping it.")
    (delivery_id,) = await events.queue_message(
        session,
        WebhookEvent.WEBHOOK_PING,
        {"webhook_id": str(endpoint.id)},
        endpoint_id=endpoint.id,
    )
    delivery = await session.get(WebhookDelivery, delivery_id)
    assert delivery is not None
    return delivery


async def list_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    status: WebhookDeliveryStatus | None,
    event: WebhookEvent | None,
    limit: int,
    offset: int,
) -> list[WebhookDelivery]:
    """Newest first."""
    await get(session, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if event is not None:
        query = query.where(WebhookDelivery.event == event.value)
    query = (
        query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(query)).scalars())


async def retry(session: AsyncSession, endpoint_id: uuid.UUID, message_id: str) -> WebhookDelivery:
    """A failed delivery is pending again, with a fresh set of attempts, due now."""
    endpoint = await get(session, endpoint_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.message_id == message_id)
        .with_for_update(key_share=True)
    )
    delivery = (await session.execute(query)).scalar_one_or_none()
    if delivery is None:
        raise NotFound(f"Delivery {message_id} of webhook endpoint {endpoint_id} was not found.")
    if not endpoint.is_active:
        raise InvalidState("This endpoint is disabled; enable it (is_active true) first.")
    if delivery.status != WebhookDeliveryStatus.FAILED:
        raise InvalidState(f"Only a failed delivery can be retried; this one is {delivery.status}.")
    delivery.status = WebhookDeliveryStatus.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = await session.scalar(text("SELECT now()"))
    await session.flush()
    await jobs.enqueue(session, jobs.WEBHOOK, [delivery.id], lane=endpoint_id)
    return delivery


# The delivery log keeps a month: long enough to look into a receiver's complaint, short
# enough that the payloads it holds (patients' names and numbers) do not pile up for ever.
DELIVERY_LOG_DAYS = 30

_PURGE = text(
    """
    WITH gone AS (
        DELETE FROM webhook_deliveries d USING webhook_endpoints e
         WHERE d.endpoint_id = e.id AND d.status <> 'pending'
           AND d.created_at < now() - make_interval(days => :days)
        RETURNING d.id
    )
    DELETE FROM outbox_jobs j USING gone
     WHERE j.target = :target AND j.aggregate_id = gone.id AND j.status IN ('done', 'failed')
    """
)


async def purge_old_deliveries(session: AsyncSession, keep_days: int = DELIVERY_LOG_DAYS) -> None:
    """Drop delivered and failed messages older than `keep_days` with their outbox jobs.

    Joined through the endpoints so each endpoint's part is a range of its
    (endpoint, created_at) index, however long the log; pending messages are never dropped.
    """
    await session.execute(_PURGE, {"days": keep_days, "target": jobs.WEBHOOK})
