"""A request's POST to `/mcp`, answered in the request's own task.

The SDK's session manager serves each stateless request by building a transport with its
memory streams, a JSON-RPC dispatcher and a server task, and then a task for the message: over
a quarter of an MCP call's CPU, on every call (BENCHMARKS.md). Its public surface has no
lighter way for the handshake-era protocol, so this module owns that one case: a POST of one
JSON-RPC request, sent and accepted as JSON, at a handshake-era protocol version (or none),
which is every request an agent sends (`initialize`, `tools/list`, each tool call). It runs
the request through the SDK's own single-request driver (`mcp.server.runner.serve_one`, which
its 2026-07-28 entry uses), with the connection, transport context and request metadata the
manager's stateless path gives it, and answers as the manager's JSON mode does.

Everything else goes to the SDK's manager untouched (the body, when already read, replayed):
notifications, malformed or non-JSON bodies, other media types, the 2026-07-28 protocol. So
every refusal is still the SDK's; tests/test_mcp_exchange.py holds the answers this module
gives to those of the manager, request by request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.runner import serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    DEFAULT_NEGOTIATED_VERSION,
    ErrorData,
    JSONRPCError,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

logger = logging.getLogger("app.agent")

_JSON = "application/json"


@dataclass(eq=False)
class _OneRequest:
    """The SDK's `DispatchContext` for a request answered in its own HTTP response: as in the
    manager's stateless JSON mode, there is nothing else to send the client on, so a request to
    it is refused and notifications and progress are dropped."""

    request_id: RequestId
    message_metadata: ServerMessageMetadata
    transport: TransportContext = field(
        default_factory=lambda: TransportContext(kind="streamable-http", can_send_request=False)
    )
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = False

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> None:
        return None

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        return None


class Exchange:
    """`/mcp` behind the key check: one JSON-RPC request answered here, the rest by `manager`."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager
        self.server = manager.app
        self.lifespan_state: Any = None
        # What is answered here is what the manager does stateless, in JSON, with no Host or
        # Origin checks (`server.mount`); configured otherwise, the manager answers it all.
        security = manager.security_settings
        self.answers = (
            manager.stateless
            and manager.json_response
            and not (security is not None and security.enable_dns_rebinding_protection)
        )

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Run the manager, and the server's lifespan for the requests answered here (the
        manager keeps its own to itself; the tools' server has the SDK's empty one)."""
        async with self.manager.run(), self.server.lifespan(self.server) as state:
            self.lifespan_state = state
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        version = request.headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if (
            self.answers
            and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS)
            and _sends_json(request.headers)
            and check_accept_headers(request)[0]
        ):
            body = await request.body()
            message = _one_request(body)
            if message is not None:
                reply = await self._reply(message, request, version)
                body_out = reply.model_dump_json(by_alias=True, exclude_unset=True)
                await Response(body_out, media_type=_JSON)(scope, receive, send)
                return
            receive = _replayed(body, receive)
        await self.manager.handle_request(scope, receive, send)

    async def _reply(
        self, message: JSONRPCRequest, request: Request, version: str | None
    ) -> JSONRPCResponse | JSONRPCError:
        """What the manager's dispatcher would write for `message`: its result, or its error
        (an `MCPError`'s own, invalid params, else code 0 with the message, logged)."""
        context = _OneRequest(
            message.id, ServerMessageMetadata(request_context=request, can_send_request=False)
        )
        connection = Connection.from_envelope(version or DEFAULT_NEGOTIATED_VERSION, None, None)
        try:
            result = await serve_one(
                self.server,
                context,
                message.method,
                message.params,
                connection=connection,
                lifespan_state=self.lifespan_state,
            )
        except Exception as exc:
            error = handler_exception_to_error_data(exc)
            if error is None:
                logger.exception("handler for %r raised", message.method)
                error = ErrorData(code=0, message=str(exc))
            return JSONRPCError(jsonrpc="2.0", id=message.id, error=error)
        return JSONRPCResponse(jsonrpc="2.0", id=message.id, result=result)


def _sends_json(headers: Headers) -> bool:
    # Exactly `application/json` (parameters allowed): what both of the SDK's content-type
    # checks accept. Any other spelling is left to them.
    return headers.get("content-type", "").split(";")[0] == _JSON


def _one_request(body: bytes) -> JSONRPCRequest | None:
    """The body as the SDK's transport reads it, when that is one JSON-RPC request."""
    try:
        message = jsonrpc_message_adapter.validate_python(
            pydantic_core.from_json(body), by_name=False
        )
    except (ValueError, ValidationError):
        return None
    return message if isinstance(message, JSONRPCRequest) else None


def _replayed(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read given back first."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
