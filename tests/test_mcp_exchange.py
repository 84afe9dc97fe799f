"""`/mcp`'s own answer to a tool call's POST (app/agent/exchange.py) is the SDK's: the same
requests, sent once through the service and once straight to the SDK's session manager, get
the same status, media type and JSON-RPC reply; and the requests it leaves to the SDK reach it
with their bodies intact."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.agent.exchange import Exchange
from app.agent.server import PATH
from app.security import Role
from tests.conftest import API_KEY
from tests.factories import create_doctor, next_weekday

ACCEPT = "application/json, text/event-stream"
INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "parity", "version": "1"},
}


def exchange_of(app: FastAPI) -> Exchange:
    route = next(r for r in app.router.routes if isinstance(r, Route) and r.path == PATH)
    exchange = getattr(route.endpoint, "exchange", None)
    assert isinstance(exchange, Exchange)
    return exchange


@pytest.fixture
async def sdk(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The SDK's manager alone, behind what the key check gives it (the caller in the
    request's state)."""
    manager = exchange_of(app).manager

    async def only_the_sdk(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app
        scope.setdefault("state", {}).update(actor="agent", role=Role.AGENT)
        await manager.handle_request(scope, receive, send)

    transport = httpx.ASGITransport(app=only_the_sdk)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def rpc(method: str, params: dict[str, Any] | None = None, id_: int | str = 7) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def call(tool: str, **arguments: Any) -> bytes:
    return rpc("tools/call", {"name": tool, "arguments": arguments})


async def both(
    client: httpx.AsyncClient, sdk: httpx.AsyncClient, body: bytes, **headers: str
) -> tuple[httpx.Response, httpx.Response]:
    sent = {"Accept": ACCEPT, "Content-Type": "application/json", **headers}
    ours = await client.post(PATH, content=body, headers=sent)
    theirs = await sdk.post(PATH, content=body, headers=sent)
    return ours, theirs


def same(ours: httpx.Response, theirs: httpx.Response) -> None:
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    assert ours.headers.get("content-type") == theirs.headers.get("content-type")
    assert (ours.json() if ours.content else None) == (theirs.json() if theirs.content else None)


async def test_the_requests_answered_here_are_answered_as_the_sdk_answers_them(
    client: httpx.AsyncClient, sdk: httpx.AsyncClient
) -> None:
    doctor = await create_doctor(client, name="Dr Asha Rao")
    day = next_weekday(1).isoformat()
    bodies = [
        rpc("initialize", INITIALIZE),
        rpc("tools/list", id_="list-1"),
        rpc("ping"),
        call("find_doctors", name="asha"),
        call("get_availability", doctor_id=doctor["id"], start_date=day),
        # Refused by the tool (the REST 400 body), by the SDK (an unknown tool, arguments
        # of the wrong type, a method nobody serves, params that are not the method's).
        call("hold_slot", doctor_id=doctor["id"], date="tomorrow", start_time="09:00"),
        call("no_such_tool"),
        call("find_earliest_slots", limit="ten"),
        rpc("resources/frobnicate"),
        rpc("tools/call", {"name": 5}),
    ]
    for body in bodies:
        same(*await both(client, sdk, body))
    # At an explicit handshake-era version too.
    same(*await both(client, sdk, rpc("tools/list"), **{"MCP-Protocol-Version": "2025-06-18"}))


async def test_what_it_leaves_to_the_sdk_reaches_the_sdk_whole(
    client: httpx.AsyncClient, sdk: httpx.AsyncClient
) -> None:
    initialized = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    for body, headers in [
        (initialized.encode(), {}),  # a notification: 202, nothing to answer
        (b'{"jsonrpc": "2.0", "id": 1, "method": ', {}),  # not JSON
        (b"[" + rpc("ping") + b"]", {}),  # a batch
        (b'{"jsonrpc": "2.0", "id": 1}', {}),  # neither request nor notification
        (rpc("ping"), {"Content-Type": "text/plain"}),
        (rpc("ping"), {"Content-Type": "Application/JSON"}),
        (rpc("ping"), {"Accept": "text/event-stream"}),
        (rpc("ping"), {"MCP-Protocol-Version": "1999-01-01"}),
    ]:
        ours, theirs = await both(client, sdk, body, **headers)
        assert ours.status_code == theirs.status_code, (body, ours.text, theirs.text)
        assert ours.content == theirs.content, body


async def test_a_tool_call_is_answered_without_the_sdk_manager(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("reached the SDK's manager")

    monkeypatch.setattr(exchange_of(app).manager, "handle_request", refuse)
    headers = {"Accept": ACCEPT, "Content-Type": "application/json", "X-API-Key": API_KEY}
    response = await client.post(PATH, content=call("clinic_info"), headers=headers)
    assert response.status_code == 200, response.text
    assert not response.json()["result"]["isError"]
