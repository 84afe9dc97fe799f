"""API-key authentication: several keys at once (for rotation), compared in constant time."""

from __future__ import annotations

import hmac
import math
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from app.errors import RateLimited, ServiceError


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def authenticate(keys: dict[str, str], presented: str | None) -> str | None:
    """Return the key's name, checking every key so timing does not reveal which one matched."""
    if not presented:
        return None
    supplied = presented.encode()
    matched: str | None = None
    for secret, name in keys.items():
        if hmac.compare_digest(secret.encode(), supplied):
            matched = name
    return matched


class KeyRateLimiter:
    """At most `per_minute` requests per API key name in any sliding minute, per process.

    In memory, so with N processes (workers or instances) a key gets up to N times the limit;
    set `RATE_LIMIT_PER_MINUTE` to the clinic-wide budget divided by N.
    """

    def __init__(self, per_minute: int) -> None:
        self._item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def check(self, key_name: str) -> None:
        if await self._limiter.hit(self._item, key_name):
            return
        stats = await self._limiter.get_window_stats(self._item, key_name)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            "Too many requests for this API key; retry later.",
            extra={"retry_after": retry_after},
        )


async def require_api_key(
    request: Request, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> str:
    name = authenticate(request.app.state.api_keys, api_key)
    if name is None:
        raise Unauthorized("A valid X-API-Key header is required.")
    limiter: KeyRateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        await limiter.check(name)
    request.state.actor = name
    return name


def actor_of(request: Request) -> str:
    """The name of the key `require_api_key` accepted for this request (it runs first, as a
    dependency of every /api/v1 router), without resolving that dependency again."""
    actor: str = request.state.actor
    return actor
