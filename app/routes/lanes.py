"""Plain routes in front of the hottest operations: one doctor's availability, the search and
booking.

Each calls the very endpoint function FastAPI declares (and documents) for the operation, but
reads the key, the path, the headers and the body itself: on these paths FastAPI's
per-request parameter and dependency resolution cost more CPU than the operation's own work
(BENCHMARKS.md). Errors are the same exceptions, rendered by the same handlers, with the same
statuses, codes and fields (a message's wording may differ).

The /api/v1 routers' dependencies do not run here: each lane checks the key itself, and the
roles the documented route declares (`allow`), and a test (tests/test_lanes.py) fails when the
routers gain a dependency the lanes do not know.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.routing import Match, Route
from starlette.types import Scope

from app.errors import InvalidInput
from app.routes.appointment import book_appointment, find_earliest_slots, get_availability
from app.routes.deps import CORRELATION_ID_MAX, IDEMPOTENCY_KEY_MAX, request_change
from app.schemas.appointment import AppointmentCreate
from app.security import Role, check_role, require_api_key, roles_of

_API = "/api/v1/appointments"


async def _authenticated(request: Request, roles: frozenset[Role]) -> None:
    key = await require_api_key(request, request.headers.get("x-api-key"))
    check_role(key.role, roles)


def _header(headers: Headers, name: str, shortest: int, longest: int) -> str | None:
    value = headers.get(name)
    if value is not None and not shortest <= len(value) <= longest:
        raise InvalidInput(name, f"must be {shortest} to {longest} characters")
    return value


def _is_json(headers: Headers) -> bool:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


async def availability(request: Request, roles: frozenset[Role]) -> Response:
    await _authenticated(request, roles)
    try:
        doctor_id = uuid.UUID(request.path_params["doctor_id"])
    except ValueError:
        raise InvalidInput("doctor_id", "must be a UUID") from None
    return await get_availability(doctor_id, request)


async def search(request: Request, roles: frozenset[Role]) -> Response:
    await _authenticated(request, roles)
    return await find_earliest_slots(request)


async def booking(request: Request, roles: frozenset[Role]) -> Response:
    await _authenticated(request, roles)
    correlation_id = _header(request.headers, "x-correlation-id", 0, CORRELATION_ID_MAX)
    idempotency_key = _header(request.headers, "idempotency-key", 1, IDEMPOTENCY_KEY_MAX)
    raw = await request.body()
    if not raw:
        raise InvalidInput("body", "a JSON body is required")
    if not _is_json(request.headers):
        raise InvalidInput("body", "send the body as application/json")
    try:
        data = AppointmentCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    async with request_change(request, correlation_id) as change:
        response = await book_appointment(data, change, idempotency_key)
    return response


class _Lane(Route):
    """A plain route that names itself in the scope, as FastAPI's do, for the request metrics'
    route label, and answers only its own method (Starlette would add HEAD to a GET)."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request, frozenset[Role]], Awaitable[Response]],
        method: str,
        roles: frozenset[Role],
    ) -> None:
        async def lane(request: Request) -> Response:
            return await endpoint(request, roles)

        super().__init__(path, lane, methods=[method])
        self.methods = {method}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def lanes(routes: list[Any]) -> list[Route]:
    """The routes to put first in the application's router (given its routes, for the roles
    each operation declares)."""
    declared = {
        context.original_route.endpoint: roles_of(context.original_route.dependencies)
        for context in iter_route_contexts(routes)
        if isinstance(context.original_route, APIRoute)
    }
    reading, searching = declared[get_availability], declared[find_earliest_slots]
    booking_roles = declared[book_appointment]
    assert reading and searching and booking_roles, "every route declares its roles"
    return [
        _Lane(f"{_API}/availability/{{doctor_id}}", availability, "GET", reading),
        _Lane(f"{_API}/availability", search, "GET", searching),
        _Lane(f"{_API}/", booking, "POST", booking_roles),
        _Lane(_API, booking, "POST", booking_roles),
    ]
