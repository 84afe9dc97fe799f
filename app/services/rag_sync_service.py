"""The RAG mirror: descriptive doctor data only, never a schedule.

A doctor's creation, or a change to an allow-listed field, queues a `rag` outbox job in the
same transaction (`doctor_changed`); `RagMirror` delivers it. The payload is built from the
allow-list at delivery time, so the RAG service always receives the doctor's latest
description and never anything else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.database import Sessions, unit_of_work
from app.models import Doctor
from app.services.context import Clinic
from app.services.outbox import jobs
from app.services.outbox.delivery import (
    PermanentDeliveryError,
    RetryableDeliveryError,
    parse_retry_after,
)
from app.services.outbox.jobs import ClaimedJob


class RagDoctor(BaseModel):
    """The allow-list: the only doctor fields the RAG service may ever see."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    id: uuid.UUID
    clinic_id: uuid.UUID
    name: str
    specialization: str
    experience_years: int
    languages: list[str]
    consultation_type: str
    general_working_days_text: str | None
    is_active: bool
    updated_at: dt.datetime


RAG_FIELDS = tuple(RagDoctor.model_fields)
# A change to any of these (updated_at aside) is worth telling the RAG service about.
RAG_TRIGGER_FIELDS = frozenset(RAG_FIELDS) - {"id", "updated_at"}


def rag_payload(row: Any) -> dict[str, Any]:
    return RagDoctor.model_validate(row).model_dump(mode="json")


async def doctor_changed(
    session: AsyncSession, doctor_id: uuid.UUID, changed_fields: Collection[str], clinic: Clinic
) -> None:
    """Owe the RAG service this doctor's description if a field it sees changed (a new
    doctor: every field), in the same transaction as the change."""
    if clinic.rag_enabled and not RAG_TRIGGER_FIELDS.isdisjoint(changed_fields):
        await jobs.enqueue(session, jobs.RAG, [doctor_id])


async def resync_all(session: AsyncSession) -> int:
    """Queue every doctor for the RAG service, e.g. after its index was rebuilt."""
    ids = list((await session.execute(select(Doctor.id))).scalars())
    await jobs.enqueue(session, jobs.RAG, ids)
    return len(ids)


class RagMirror:
    target = jobs.RAG

    def __init__(
        self,
        settings: Settings,
        sessionmaker: Sessions,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert settings.rag_service_url is not None
        self._sessionmaker = sessionmaker
        headers = {"Content-Type": "application/json"}
        if settings.rag_service_api_key:
            headers["X-API-Key"] = settings.rag_service_api_key
        self._client = httpx.AsyncClient(
            base_url=settings.rag_service_url.rstrip("/"),
            headers=headers,
            timeout=settings.rag_timeout_seconds,
            transport=transport,
        )

    async def deliver(self, job: ClaimedJob) -> dict[str, Any]:
        columns = [getattr(Doctor, field) for field in RAG_FIELDS]
        async with unit_of_work(self._sessionmaker) as session:
            row = (
                await session.execute(select(*columns).where(Doctor.id == job.aggregate_id))
            ).one_or_none()
        if row is None:
            return {"skipped": "doctor not found"}
        payload = rag_payload(row)
        try:
            response = await self._client.put(f"/doctors/{job.aggregate_id}", json=payload)
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError("RAG service timed out") from exc
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"RAG service unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableDeliveryError(
                f"RAG service answered {response.status_code}",
                parse_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code >= 400:
            raise PermanentDeliveryError(
                f"RAG service answered {response.status_code}: {response.text[:300]}"
            )
        return {"status_code": response.status_code, "updated_at": payload["updated_at"]}

    async def lock(self, session: AsyncSession, job: ClaimedJob) -> None:
        """Nothing to lock: settling writes only the outbox row, never the doctor."""

    async def record(
        self,
        session: AsyncSession,
        job: ClaimedJob,
        status: str,
        error: str | None,
        result: dict[str, Any] | None,
    ) -> None:
        """The outbox row is the RAG sync record; nothing else to write."""

    async def aclose(self) -> None:
        await self._client.aclose()
