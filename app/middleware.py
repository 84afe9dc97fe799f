"""Pure ASGI middleware: request ids on every response, a last-resort 500 in the spec shape,
the request's read session closed once the answer is sent; and limits on what a request may
carry, checked before anything parses it."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.database import close_request_session
from app.errors import InvalidInput, PayloadTooLarge, ServiceError
from app.logging_setup import request_id_var

logger = logging.getLogger("app.request")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        response_started = False
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal response_started, status
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "unhandled error", extra={"method": scope["method"], "path": scope["path"]}
            )
            if not response_started:
                body = json.dumps(
                    {
                        "detail": "An unexpected error occurred; quote the request id.",
                        "code": "internal_error",
                        "request_id": request_id,
                    }
                ).encode()
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - started
            template = route_template(scope)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, template, metrics.status_class(status)).inc()
            metrics.HTTP_LATENCY.labels(method, template).observe(elapsed)
            if status >= 500:
                logger.error(
                    "request failed",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
            try:
                await close_request_session(scope)
            finally:
                request_id_var.reset(token)


def route_template(scope: Scope) -> str:
    """The matched route's full template (e.g. `/api/v1/doctors/{doctor_id}`), never raw ids.

    The router reports the matched route's own path, relative to the routers it was included
    in; the prefixes hold no parameters, so they are the request path's leading segments.
    """
    route_path = getattr(scope.get("route"), "path", None)
    if route_path is None:
        return "unmatched"
    own = route_path.split("/")[1:]
    segments = scope["path"].split("/")
    prefix = segments[: len(segments) - len(own)] if own else segments
    return "/".join([*prefix, *own]) or "/"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SAFE_ID.match(candidate) else None
    return None


MAX_BODY_BYTES = 64 * 1024
_TOO_LARGE = "The request body is larger than 64 KiB."
# Percent-decoded, a query string may hold no control character (a tab or line break
# included): no query parameter is free text.
_QUERY_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


class RequestLimitsMiddleware:
    """Bodies over 64 KiB are refused with 413 before they are read (by their Content-Length,
    or as their chunks arrive), and query strings with control characters with 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if query and _QUERY_CONTROL.search(unquote_to_bytes(query.replace(b"+", b" "))):
            await send_error(InvalidInput("query", "must not contain control characters"), send)
            return
        length = _content_length(scope)
        if length is not None and length > MAX_BODY_BYTES:
            await send_error(PayloadTooLarge(_TOO_LARGE), send)
            return
        if length is not None or scope["method"] in ("GET", "HEAD", "DELETE"):
            # Declared small, or no body expected: the server reads no more than declared.
            await self.app(scope, receive, send)
            return
        received, refused = 0, False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                # Answered here: the app's body parser would turn an error raised from its
                # reader into a generic 400. To the app the client has gone, and whatever it
                # answers to that is dropped.
                refused = True
                await send_error(PayloadTooLarge(_TOO_LARGE), send)
                return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_error(
    error: ServiceError, send: Send, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with a domain error in the spec's shape, from ASGI code outside the routes."""
    body = json.dumps(error.body()).encode()
    start: Message = {
        "type": "http.response.start",
        "status": error.status_code,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
