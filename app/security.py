"""API-key authentication: several keys at once (for rotation), compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from app.errors import ServiceError


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


async def require_api_key(
    request: Request, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> str:
    name = authenticate(request.app.state.api_keys, api_key)
    if name is None:
        raise Unauthorized("A valid X-API-Key header is required.")
    request.state.actor = name
    return name


ActorDep = Annotated[str, Depends(require_api_key)]
