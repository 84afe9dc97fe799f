"""Who the caller is: the API key's name and role, so a client can check its key (and what it
may do) before it acts."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.routes.deps import error_responses
from app.schemas.key import KeyRead
from app.security import Role, actor_of, allow

router = APIRouter(tags=["keys"])


@router.get("/me", dependencies=[allow(*Role)], responses=error_responses())
async def get_me(request: Request) -> KeyRead:
    """The name and role of the API key sent."""
    return KeyRead(name=actor_of(request), role=request.state.role)
