"""Idempotent booking: one key, one appointment, however often and however fast it is retried."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import delete, func, text
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


_CLAIM = """
    INSERT INTO idempotency_keys (actor, key, request_hash) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
    RETURNING key
"""
_STORED = """
    SELECT request_hash, response_status, response_body
      FROM idempotency_keys WHERE actor = $1 AND key = $2
"""
_STORE = """
    UPDATE idempotency_keys SET response_status = $3, response_body = $4::jsonb
     WHERE actor = $1 AND key = $2
"""


async def claim(
    driver: asyncpg.Connection, actor: str, key: str, request_hash: str
) -> StoredResponse | None:
    """Take the key for this transaction, or return the response stored under it.

    The insert waits on the unique index while another transaction holds the same key, so a
    concurrent duplicate sees the first one's outcome: committed (replay it) or rolled back
    (the key is free again and this request proceeds).
    """
    if await driver.fetchval(_CLAIM, actor, key, request_hash) is not None:
        return None
    stored = await driver.fetchrow(_STORED, actor, key)
    if stored is None:  # purged between the two statements: as good as still in flight
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    if stored["request_hash"] != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body."
        )
    if stored["response_status"] is None or stored["response_body"] is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    return StoredResponse(stored["response_status"], stored["response_body"])


async def store(
    driver: asyncpg.Connection, actor: str, key: str, status: int, body: dict[str, Any]
) -> None:
    await driver.execute(_STORE, actor, key, status, json.dumps(body))


async def purge_expired(session: AsyncSession, keep_hours: int = 48) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < func.now() - text(f"interval '{int(keep_hours)} hours'")
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
