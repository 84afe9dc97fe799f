"""Pure ASGI middleware: request ids on every response, a last-resort 500 in the spec shape,
the request's read session closed once the answer is sent; and limits on what a request may
carry, checked before anything parses it."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.database import close_request_session
from app.errors import InvalidInput, PayloadTooLarge, ServiceError
from app.logging_setup import request_id_var
from app.schemas.common import check_text

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
# Requests that carry no body: nothing to count, so no read ahead.
_BODILESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
# Headers whose text the service keeps (the audit trail's correlation id, the stored key).
# HTTP servers refuse most control bytes in headers, but not a tab, nor bytes 0x80-0x9f,
# which arrive as C1 control characters once decoded as Latin-1.
_KEPT_HEADERS = frozenset({b"x-correlation-id", b"idempotency-key"})


class RequestLimitsMiddleware:
    """Refused before anything parses the request: a body over 64 KiB (413, by its
    Content-Length, or counted as a body without one arrives), and control characters in the
    path, a query parameter or a kept header (400, by `check_text`'s rule for one-line text:
    none of these is free text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _control_characters(scope)
        if refusal is not None:
            await send_error(refusal, send)
            return
        length = _content_length(scope)
        if length is not None and length > MAX_BODY_BYTES:
            await send_error(PayloadTooLarge(_TOO_LARGE), send)
            return
        if length is None and scope["method"] not in _BODILESS:
            # A body of unknown length (chunked) is read here, up to the limit, and replayed:
            # refused midway by the app's own reader, it would be a client that went away,
            # which the app answers with an error of its own, and logs as one.
            messages = await _body_within_limit(receive)
            if messages is None:
                await send_error(PayloadTooLarge(_TOO_LARGE), send)
                return
            receive = _replay(messages, receive)
        # With a Content-Length the server delivers no more than declared: nothing to count.
        await self.app(scope, receive, send)


async def _body_within_limit(receive: Receive) -> list[Message] | None:
    """The body's messages as received, or None as soon as they pass the limit."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return None
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = iter(messages)

    async def replayed() -> Message:
        # Then the server's own, which says when the client goes away.
        return next(pending, None) or await receive()

    return replayed


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _control_characters(scope: Scope) -> InvalidInput | None:
    """The first text outside the body that breaks `check_text`'s rule, named, or None."""
    if (refusal := _refused(scope["path"], "path")) is not None:
        return refusal
    query: bytes = scope.get("query_string", b"")
    if query and (refusal := _query_refusal(query.decode("latin-1"))) is not None:
        return refusal
    for name, value in scope["headers"]:
        if name in _KEPT_HEADERS and (refusal := _refused(value.decode("latin-1"), name.decode())):
            return refusal
    return None


def _query_refusal(query: str) -> InvalidInput | None:
    # Decoded as Starlette's parser decodes it (UTF-8, undecodable bytes replaced), so what is
    # judged is what the routes would see; a "+" (a space) changes nothing here.
    decoded = unquote(query) if "%" in query else query
    whole = _refused(decoded, "query")
    if whole is None:
        return None
    for name, value in parse_qsl(query, keep_blank_values=True):
        refusal = _refused(name, "query") or _refused(value, name)
        if refusal is not None:
            return refusal
    return whole


def _refused(text: str, field: str) -> InvalidInput | None:
    """A 400 naming `field` when `text` holds a control character (outside the body nothing
    is free text, whatever it is called)."""
    try:
        check_text(text)
    except ValueError as exc:
        return InvalidInput(field, str(exc))
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
