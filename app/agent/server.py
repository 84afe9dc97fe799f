"""`/mcp`: the tools over streamable HTTP, stateless (any process answers any request), behind
the same API keys and rate limit as `/api/v1`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app import VERSION
from app.agent import tools
from app.agent.arguments import KnownArguments
from app.agent.exchange import Exchange
from app.errors import ServiceError, Unauthorized
from app.middleware import send_error
from app.security import Role, authenticate, check_role

PATH = "/mcp"
# The tools book, move and cancel: the phone agent's role, and the clinic's admins.
ROLES = frozenset({Role.ADMIN, Role.AGENT})
INSTRUCTIONS = (
    "Appointment booking for one clinic. Call clinic_info first for today's date, the time "
    "and the visit types. Find a slot (find_earliest_slots or get_availability), keep it "
    "with hold_slot while you take the caller's name and mobile number, then book it with "
    "book_appointment(hold_id=...). Dates are YYYY-MM-DD and times HH:MM in clinic time. "
    "Every result has one sentence you can read to the caller."
)


class _Guard:
    """Checks the key (X-API-Key or a bearer token) and the key's rate before MCP runs."""

    def __init__(self, app: FastAPI, exchange: Exchange) -> None:
        self.app = app
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.app.state
        key = authenticate(state.api_keys, presented_key(Headers(scope=scope)))
        try:
            if key is None:
                raise Unauthorized(
                    "A valid X-API-Key header (or Authorization: Bearer <key>) is required."
                )
            if state.rate_limiter is not None:
                await state.rate_limiter.check(key.name)
            check_role(key.role, ROLES)
        except ServiceError as exc:
            await _refuse(exc, send)
            return
        # Where the tools read them (`request.state`, as REST routes do; `answers.agent_of`).
        scope.setdefault("state", {}).update(actor=key.name, role=key.role)
        await self.exchange(scope, receive, send)


def presented_key(headers: Headers) -> str | None:
    """The API key a request presents: `X-API-Key`, or `Authorization: Bearer <key>`."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, secret = headers.get("authorization", "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


async def _refuse(exc: ServiceError, send: Send) -> None:
    challenge = [(b"www-authenticate", b"Bearer")] if exc.status_code == 401 else None
    await send_error(exc, send, challenge)


def mount(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """Serve the tools at `/mcp` on `app`; enter the returned context in the app's lifespan."""
    server = MCPServer(
        name="clinic-booking",
        version=VERSION,
        instructions=INSTRUCTIONS,
        extensions=[KnownArguments(tools.TOOLS)],
    )
    tools.register(server)
    # Host and Origin checks guard local tools from web pages; this is a network service whose
    # callers prove themselves with an API key, reached under whatever host it is deployed at.
    server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    exchange = Exchange(server.session_manager)
    # POST only: stateless, there is no session to stream to (GET) or to end (DELETE). First in
    # the router: at the end, every MCP request was matched against each /api/v1 router
    # first, a twentieth of a tool call's CPU; one path comparison costs the others nothing.
    app.router.routes.insert(0, Route(PATH, _Guard(app, exchange), methods=["POST"]))
    return _serving(exchange)


@asynccontextmanager
async def _serving(exchange: Exchange) -> AsyncIterator[None]:
    """Run the session manager in a task of its own: its task group must be left by the task
    that entered it, and a lifespan's start and end need not run in one task (tests, ASGI
    hosts)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with exchange.serving():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run(), name="mcp-session-manager")
    waiting = asyncio.ensure_future(started.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():  # it failed to start: say why
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task
