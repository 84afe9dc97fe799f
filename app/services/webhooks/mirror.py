"""`WebhookMirror`: delivers `webhook` outbox jobs, one message to one endpoint each.

Each attempt reads the message and its endpoint as they are now: a message whose row is gone
(its endpoint deleted), already settled, or whose endpoint is disabled is not sent. The
address is checked again (`address.resolve`) and the attempt connects to what was checked.
The body is the same bytes on every attempt, under the same `webhook-id`; the timestamp and
signatures are this attempt's. A 2xx is `delivered`; 410 disables the endpoint; anything else
is retried with the dispatcher's backoff until `WEBHOOK_MAX_ATTEMPTS` attempts in all.
Secrets are opened only to sign, and never logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.config import Settings
from app.database import Sessions, unit_of_work
from app.services import access_log_service
from app.services.context import Caller
from app.services.outbox import jobs
from app.services.outbox.delivery import (
    PermanentDeliveryError,
    RetryableDeliveryError,
    parse_retry_after,
)
from app.services.outbox.jobs import ClaimedJob
from app.services.webhooks import address, appointments, events
from app.services.webhooks.secret_box import SecretUnreadable, box_for
from app.services.webhooks.signing import signatures

GONE_REASON = "the receiver answered 410 Gone"
_ATTEMPTS_KEPT = 4096

_LOAD = text(
    """
    SELECT d.message_id, d.endpoint_id, d.event, d.data, d.occurred_at, d.status, d.attempts,
           e.url, e.is_active, e.secret,
           CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
               AS previous_secret
      FROM webhook_deliveries d
      JOIN webhook_endpoints e ON e.id = d.endpoint_id
     WHERE d.id = :id
    """
)
# Without an attempt (a delivery that crashed before making one), the counts stay as they were.
_SETTLED = """
    UPDATE webhook_deliveries d
       SET status = :status, attempts = coalesce(CAST(:attempts AS integer), d.attempts),
           last_status_code = CASE WHEN CAST(:attempts AS integer) IS NULL
                                   THEN d.last_status_code ELSE CAST(:code AS integer) END,
           last_error = CAST(:error AS text), {extra}
      FROM webhook_endpoints e
     WHERE d.id = :id AND e.id = d.endpoint_id
    RETURNING d.endpoint_id, d.patient_id, e.is_active
"""
_DELIVERED = text(_SETTLED.format(extra="delivered_at = now(), next_attempt_at = NULL"))
_FAILED = text(_SETTLED.format(extra="next_attempt_at = NULL"))
# After `jobs.mark_retry` in the same transaction: the job's next turn is the message's.
_RETRYING = text(
    _SETTLED.format(
        extra="next_attempt_at = (SELECT min(j.available_at) FROM outbox_jobs j"
        " WHERE j.target = 'webhook' AND j.aggregate_id = d.id AND j.status = 'pending')"
    )
)
_DISABLE = text(
    "UPDATE webhook_endpoints SET is_active = false, disabled_reason = :reason,"
    " updated_at = now() WHERE id = :id"
)


@dataclass(slots=True)
class Attempt:
    """What one attempt came to, kept from `deliver` to `record` (the dispatcher passes on
    only the error's text)."""

    number: int
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def message_body(event: str, occurred_at: dt.datetime, data: dict[str, Any]) -> bytes:
    """The body every attempt of a message sends, byte for byte."""
    body = {"type": event, "timestamp": occurred_at.astimezone(dt.UTC).isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class WebhookMirror:
    target = jobs.WEBHOOK

    def __init__(self, settings: Settings, sessionmaker: Sessions) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        # No connection is kept between attempts: each connects to the address its own check
        # found, and two endpoints behind one address never share a connection (or its TLS
        # name). Proxies from the environment are not used: the check is of the receiver.
        self._client = httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            limits=httpx.Limits(max_keepalive_connections=0),
            follow_redirects=False,
            trust_env=False,
        )
        # Read by `record` (which the dispatcher may run again if its transaction fails, so
        # an entry is not removed there); only the last few thousand are kept, far more than
        # are ever between an attempt and its settling.
        self._attempts: OrderedDict[int, Attempt] = OrderedDict()

    async def deliver(self, job: ClaimedJob) -> dict[str, Any]:
        self._attempts.pop(job.id, None)  # a retried job's earlier attempt
        async with unit_of_work(self._sessionmaker) as session:
            row = (await session.execute(_LOAD, {"id": job.aggregate_id})).one_or_none()
        if row is None:
            return {"skipped": "the message was dropped with its endpoint"}
        if row.status != "pending":
            return {"skipped": f"the message is already {row.status}"}
        if not row.is_active:
            # It waits, pending, until the endpoint is enabled (`events.wake`).
            return {"skipped": "the endpoint is disabled"}
        attempt = await self._attempt(row)
        self._attempts[job.id] = attempt
        self._attempts.move_to_end(job.id)
        while len(self._attempts) > _ATTEMPTS_KEPT:
            self._attempts.popitem(last=False)
        return self._judge(row.event, attempt)

    async def _attempt(self, row: Row[Any]) -> Attempt:
        attempt = Attempt(number=row.attempts + 1)
        try:
            destination = await address.resolve(row.url, self._settings)
            box = box_for(self._settings)
            keys = [box.open(row.secret)]
            if row.previous_secret is not None:
                keys.append(box.open(row.previous_secret))
        except address.Refused as exc:
            attempt.error = f"not sent: the url {exc.reason}"
            return attempt
        except SecretUnreadable as exc:
            attempt.error = f"not sent: {exc}"
            return attempt
        body = message_body(row.event, row.occurred_at, appointments.sent_data(row.data))
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": row.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures(keys, row.message_id, timestamp, body),
        }
        timeout = self._settings.webhook_timeout_seconds
        try:
            # httpx's timeout bounds each read and write; this bounds the attempt as a whole.
            async with asyncio.timeout(timeout):
                response = await self._post(row.url, destination, headers, body)
        except (TimeoutError, httpx.TimeoutException):
            attempt.error = f"no answer within {timeout:g} seconds"
        except httpx.HTTPError as exc:
            attempt.error = f"could not reach the receiver: {type(exc).__name__}"
        else:
            attempt.status_code, attempt.retry_after = response
            attempt.error = _answer_error(response[0])
        return attempt

    async def _post(
        self, url: str, destination: address.Destination, headers: dict[str, str], body: bytes
    ) -> tuple[int, float | None]:
        """POST to the first checked address that accepts a connection; the answer's status
        and Retry-After (the body is not read)."""
        target = httpx.URL(url)
        headers = {**headers, "host": target.netloc.decode("ascii")}
        failure: httpx.ConnectError | None = None
        for ip in destination.addresses:
            try:
                async with self._client.stream(
                    "POST",
                    target.copy_with(host=str(ip)),
                    content=body,
                    headers=headers,
                    extensions={"sni_hostname": destination.host},
                ) as response:
                    return response.status_code, parse_retry_after(
                        response.headers.get("retry-after")
                    )
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None  # a Destination has at least one address
        raise failure

    def _judge(self, event: str, attempt: Attempt) -> dict[str, Any]:
        code = attempt.status_code
        if code is not None and 200 <= code < 300:
            metrics.WEBHOOK_DELIVERIES.labels(event, "delivered").inc()
            return {"status_code": code}
        error = attempt.error or "failed"
        if code == 410:
            metrics.WEBHOOK_DELIVERIES.labels(event, "disabled").inc()
            raise PermanentDeliveryError(f"{GONE_REASON}; the endpoint is disabled")
        if attempt.number >= self._settings.webhook_max_attempts:
            metrics.WEBHOOK_DELIVERIES.labels(event, "failed").inc()
            raise PermanentDeliveryError(f"{error} (gave up after {attempt.number} attempts)")
        metrics.WEBHOOK_DELIVERIES.labels(event, "retry").inc()
        raise RetryableDeliveryError(error, attempt.retry_after)

    async def lock(self, session: AsyncSession, job: ClaimedJob) -> None:
        # The message's row first, as the retry operation takes it before queueing its job.
        await session.execute(
            text("SELECT 1 FROM webhook_deliveries WHERE id = :id FOR NO KEY UPDATE"),
            {"id": job.aggregate_id},
        )

    async def record(
        self,
        session: AsyncSession,
        job: ClaimedJob,
        status: str,
        error: str | None,
        result: dict[str, Any] | None,
    ) -> None:
        """Write the attempt's outcome on the message, in the job's settle transaction."""
        attempt = self._attempts.get(job.id)
        if result is not None and "skipped" in result:
            return
        statement = {"synced": _DELIVERED, "pending": _RETRYING}.get(status, _FAILED)
        values = {
            "id": job.aggregate_id,
            "status": "delivered" if status == "synced" else status,
            "attempts": attempt.number if attempt else None,
            "code": attempt.status_code if attempt else None,
            "error": error,
        }
        row = (await session.execute(statement, values)).one_or_none()
        if row is None:
            return  # dropped with its endpoint meanwhile
        if status == "synced" and row.patient_id is not None:
            await _log_access(session, row.endpoint_id, row.patient_id)
        elif attempt is not None and attempt.status_code == 410:
            await session.execute(_DISABLE, {"id": row.endpoint_id, "reason": GONE_REASON})
            await events.hold_back(session, row.endpoint_id)
        elif status == "pending" and not row.is_active:
            await events.hold_back(session, row.endpoint_id)  # disabled during the attempt

    async def aclose(self) -> None:
        await self._client.aclose()


def _answer_error(status_code: int) -> str | None:
    if 200 <= status_code < 300:
        return None
    if 300 <= status_code < 400:
        return f"the receiver answered {status_code} (redirects are not followed)"
    return f"the receiver answered {status_code}"


async def _log_access(session: AsyncSession, endpoint_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """A delivered message showed the patient to the endpoint's owner."""
    caller = Caller(actor=f"webhook:{endpoint_id}")
    await access_log_service.record(session, caller, patient_id, "record", "webhook")
