"""Render every failure in the spec's shape: `{"detail", "code"}` plus `errors` for bad input
(the bodies a `ServiceError` does not carry itself are made in `app/error_bodies.py`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app import metrics
from app.error_bodies import DATABASE_ERRORS, LOST_DATABASE, database_failure, validation_body
from app.error_messages import sentence
from app.errors import ServiceError
from app.replica import ReplicaMiss, ReplicaReadFailed

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status_code == 404 and getattr(request.state, "read_on_replica", False):
        # Perhaps created a moment ago and not replayed there yet: the primary is the judge.
        raise ReplicaMiss from exc
    metrics.count_refusal(exc.status_code, exc.code)
    headers = (
        {"Retry-After": str(exc.extra.pop("retry_after"))} if "retry_after" in exc.extra else None
    )
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_body(exc.errors()), status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    body: dict[str, Any] = {"detail": detail, "code": code}
    if exc.status_code == 400:
        # Every 400 carries per-field errors, even when only the body as a whole is wrong.
        message = sentence("body", detail)
        body.update(code="validation_error", errors=[{"field": "body", "message": message}])
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    failure = database_failure(exc)
    if getattr(request.state, "read_on_replica", False) and (failure is None or failure[0] != 400):
        # Whatever went wrong there (gone, restarted, a recovery conflict), the primary
        # answers the read again (`replica.ReplicaFallbackMiddleware`).
        raise ReplicaReadFailed from exc
    if failure is None:
        raise exc
    status, body = failure
    headers = {"Retry-After": "2"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for kind in (*DATABASE_ERRORS, *LOST_DATABASE):
        app.add_exception_handler(kind, _database_error)
