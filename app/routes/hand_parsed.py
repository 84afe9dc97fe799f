"""Hand-parsed routes, for the hottest paths (availability of one doctor, booking).

FastAPI resolves dependencies and validates parameters through a general machinery that, on
an availability read, costs about as much as the database work itself (see BENCHMARKS.md). A
`HandParsedRoute` keeps the operation exactly as its endpoint's signature documents it, but
serves it by checking the API key and parsing the few parameters itself, then calling the same
endpoint function. Errors are the usual `ServiceError`s and `RequestValidationError`s, rendered
by the usual handlers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from app.errors import InvalidInput
from app.schemas.common import parse_calendar_date
from app.security import require_api_key

# Turns a request (and the API key's name) into the endpoint's keyword arguments.
Parser = Callable[[Request, str], Awaitable[dict[str, Any]]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Body = TypeVar("Body", bound=BaseModel)


def hand_parsed(parse: Parser) -> Callable[[Endpoint], Endpoint]:
    """Attach the parser that turns a request into the endpoint's keyword arguments."""

    def attach(endpoint: Endpoint) -> Endpoint:
        endpoint.__hand_parser__ = parse  # type: ignore[attr-defined]
        return endpoint

    return attach


class HandParsedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        parse: Parser = endpoint.__hand_parser__  # type: ignore[attr-defined]

        async def handler(request: Request) -> Response:
            actor = await require_api_key(request, request.headers.get("x-api-key"))
            response: Response = await endpoint(**await parse(request, actor))
            return response

        return handler


def path_uuid(request: Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise InvalidInput(name, "must be a UUID") from None


def query_date(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_calendar_date(raw)
    except ValueError as exc:
        raise InvalidInput(name, str(exc)) from None


def header_text(request: Request, name: str, *, max_length: int, min_length: int = 0) -> str | None:
    """An optional header, checked against the length its endpoint documents."""
    value = request.headers.get(name)
    if value is None:
        return None
    if not min_length <= len(value) <= max_length:
        raise InvalidInput(name, f"must be {min_length} to {max_length} characters")
    return value


async def json_body(request: Request, model: type[Body]) -> Body:
    """The JSON body validated as `model`; errors are reported per field, as FastAPI would."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise InvalidInput("body", "must be a JSON object sent as application/json")
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
