"""API keys and their roles: several keys at once (for rotation), compared in constant time,
each allowed what its role allows (`allow`, declared on every /api/v1 route)."""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from app.errors import Forbidden, RateLimited, Unauthorized


class Role(StrEnum):
    ADMIN = "admin"
    # The phone agent's key lives in a third-party voice platform: it books and finds, but
    # cannot change doctors or schedules, read medical history, or record arrivals.
    AGENT = "agent"
    READONLY = "readonly"


EVERY_ROLE = frozenset(Role)


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    role: Role


# A secret shorter than this is refused at start: a guessable key guards patient data.
SECRET_MIN_LENGTH = 8


def parse_api_keys(raw: str) -> dict[str, ApiKey]:
    """`name:secret:role,name2:secret2,secret3` -> {secret: ApiKey}. A key without a role is
    an admin (as every key was before roles), and a bare secret is named `default`. A refusal
    names the entry by its position (and its name where that cannot be a misplaced secret),
    never a secret: the message reaches the terminal and the logs."""
    keys: dict[str, ApiKey] = {}
    for position, item in enumerate(raw.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        entry = f"entry {position}"
        match [part.strip() for part in item.split(":")]:
            case [secret]:
                name, role = "default", Role.ADMIN.value
            case [name, secret]:
                role = Role.ADMIN.value
            case [name, secret, role]:
                pass
            case _:
                raise ValueError(f"{entry} is not `name:secret:role`, `name:secret` or a secret")
        if not name:
            raise ValueError(f"{entry} has an empty name")
        if len(secret) < SECRET_MIN_LENGTH:
            raise ValueError(f"{entry}: the secret needs {SECRET_MIN_LENGTH}+ characters")
        if secret in keys:
            raise ValueError(f"{entry} repeats the secret of an earlier entry")
        try:
            keys[secret] = ApiKey(name, Role(role))
        except ValueError:
            roles = ", ".join(Role)
            raise ValueError(
                f"{entry} (key {name!r}) has an unknown role {role!r} (one of {roles})"
            ) from None
    if not keys:
        raise ValueError("no key given")
    return keys


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def authenticate(keys: dict[str, ApiKey], presented: str | None) -> ApiKey | None:
    """The key presented, checking every key so timing does not reveal which one matched."""
    if not presented:
        return None
    supplied = presented.encode()
    matched: ApiKey | None = None
    for secret, key in keys.items():
        if hmac.compare_digest(secret.encode(), supplied):
            matched = key
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
) -> ApiKey:
    key = authenticate(request.app.state.api_keys, api_key)
    if key is None:
        raise Unauthorized("A valid X-API-Key header is required.")
    limiter: KeyRateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        await limiter.check(key.name)
    request.state.actor = key.name
    request.state.role = key.role
    return key


class Allow:
    """The roles that may call one route. Runs after `require_api_key` (a dependency of every
    /api/v1 router, so it runs first) and reads the role it found."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, request: Request) -> None:
        check_role(request.state.role, self.roles)


def check_role(role: Role, allowed: frozenset[Role]) -> None:
    if role not in allowed:
        needed = " or ".join(sorted(allowed))
        raise Forbidden(f"This API key's role ({role}) may not do this; it needs {needed}.")


def allow(*roles: Role) -> Any:
    """`dependencies=[allow(Role.ADMIN, Role.AGENT)]` on a route: who may call it. Every
    /api/v1 route declares one (a test walks the OpenAPI document, where it shows as
    `x-roles`)."""
    return Depends(Allow(frozenset(roles)))


def roles_of(dependencies: list[Any]) -> frozenset[Role] | None:
    """The roles a route's dependencies allow, None when it declares none."""
    for dependency in dependencies:
        if isinstance(dependency.dependency, Allow):
            return dependency.dependency.roles
    return None


def actor_of(request: Request) -> str:
    """The name of the key `require_api_key` accepted for this request (it runs first, as a
    dependency of every /api/v1 router), without resolving that dependency again."""
    actor: str = request.state.actor
    return actor
