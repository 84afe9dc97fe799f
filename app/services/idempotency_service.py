"""Idempotent booking: one key, one appointment, however often and however fast it is retried."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, IdempotencyKeyReused
from app.models import IdempotencyKey


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def fingerprint(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    session: AsyncSession, actor: str, key: str, request_hash: str
) -> StoredResponse | None:
    """Take the key for this transaction, or return the response stored under it.

    The insert waits on the unique index while another transaction holds the same key, so a
    concurrent duplicate sees the first one's outcome: committed (replay it) or rolled back
    (the key is free again and this request proceeds).
    """
    inserted = await session.execute(
        insert(IdempotencyKey)
        .values(actor=actor, key=key, request_hash=request_hash)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if inserted.first() is not None:
        return None
    stored = (
        await session.execute(
            select(IdempotencyKey).where(IdempotencyKey.actor == actor, IdempotencyKey.key == key)
        )
    ).scalar_one()
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body."
        )
    if stored.response_status is None or stored.response_body is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    return StoredResponse(stored.response_status, stored.response_body)


async def store(
    session: AsyncSession, actor: str, key: str, status: int, body: dict[str, Any]
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.actor == actor, IdempotencyKey.key == key)
        .values(response_status=status, response_body=body)
    )


async def purge_expired(session: AsyncSession, keep_hours: int = 48) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < func.now() - text(f"interval '{int(keep_hours)} hours'")
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
