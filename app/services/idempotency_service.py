"""Idempotent requests: one key, one outcome, however often and however fast it is retried.

Used around the changes a caller may retry (a booking, a hold), from REST and from the agent
interface alike (`once`): the key is claimed in the request's unit of work, so a retry either
replays the stored answer or, if the first attempt rolled back, finds the key free again. A
key names one operation: the same key on another operation, or with another body, is a 422.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, IdempotencyKeyReused
from app.models import IdempotencyKey
from app.sql import Sql, execute, fetchrow


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def fingerprint(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


_CLAIM = Sql(
    """
    INSERT INTO idempotency_keys (actor, key, request_hash) VALUES (:actor, :key, :request_hash)
    ON CONFLICT DO NOTHING
    RETURNING key
    """
)
_STORED = Sql(
    """
    SELECT request_hash, response_status, response_body
      FROM idempotency_keys WHERE actor = :actor AND key = :key
    """
)
_STORE = Sql(
    """
    UPDATE idempotency_keys SET response_status = :status, response_body = :body::jsonb
     WHERE actor = :actor AND key = :key
    """
)


async def claim(
    session: AsyncSession, actor: str, key: str, request_hash: str
) -> StoredResponse | None:
    """Take the key for this transaction, or return the response stored under it.

    The insert waits on the unique index while another transaction holds the same key, so a
    concurrent duplicate sees the first one's outcome: committed (replay it) or rolled back
    (the key is free again and this request proceeds).
    """
    if await fetchrow(session, _CLAIM, actor=actor, key=key, request_hash=request_hash):
        return None
    stored = await fetchrow(session, _STORED, actor=actor, key=key)
    if stored is None:  # purged between the two statements: as good as still in flight
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    if stored["request_hash"] != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body."
        )
    if stored["response_status"] is None or stored["response_body"] is None:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    body: dict[str, Any] = stored["response_body"]  # jsonb, decoded by the driver
    return StoredResponse(stored["response_status"], body)


async def store(
    session: AsyncSession, actor: str, key: str, status: int, body: dict[str, Any]
) -> None:
    await execute(session, _STORE, actor=actor, key=key, status=status, body=json.dumps(body))


@dataclass(frozen=True, slots=True)
class Answer:
    """What an idempotent operation answers: made now (`made`), or replayed (`stored`)."""

    status: int
    made: BaseModel | None = None
    stored: dict[str, Any] | None = None

    @property
    def replayed(self) -> bool:
        return self.stored is not None

    def body(self) -> dict[str, Any]:
        if self.stored is not None:
            return self.stored
        assert self.made is not None
        return self.made.model_dump(mode="json")

    def json(self) -> bytes:
        if self.made is not None:
            return self.made.model_dump_json().encode()
        return json.dumps(self.stored, separators=(",", ":")).encode()


async def once(
    session: AsyncSession,
    actor: str,
    key: str | None,
    operation: str,
    request: BaseModel,
    make: Callable[[], Awaitable[BaseModel]],
    status: int = 201,
) -> Answer:
    """`make()`'s answer, or, for a key already used on this operation with this request,
    the answer stored under it. No key: simply `make()`."""
    if key is None:
        return Answer(status, made=await make())
    request_hash = fingerprint({"operation": operation, "request": request.model_dump(mode="json")})
    stored = await claim(session, actor, key, request_hash)
    if stored is not None:
        return Answer(stored.status, stored=stored.body)
    answer = Answer(status, made=await make())
    await store(session, actor, key, status, answer.body())
    return answer


async def purge_expired(session: AsyncSession, keep_hours: int = 48) -> int:
    result = await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < func.now() - text(f"interval '{int(keep_hours)} hours'")
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
