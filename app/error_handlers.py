"""Render every failure in the spec's shape: `{"detail", "code"}` plus `errors` for bad input."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from app import metrics
from app.errors import DatabaseUnavailable, ServiceError
from app.replica import ReplicaMiss, ReplicaReadFailed

logger = logging.getLogger("app.errors")

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


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(error: dict[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field: this operation does not take it (check the spelling)"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status_code == 404 and getattr(request.state, "read_on_replica", False):
        # Perhaps created a moment ago and not replayed there yet: the primary is the judge.
        raise ReplicaMiss from exc
    if exc.status_code == 409:
        metrics.CONFLICTS.labels(exc.code).inc()
    headers = (
        {"Retry-After": str(exc.extra.pop("retry_after"))} if "retry_after" in exc.extra else None
    )
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """The 400 body for pydantic's errors: each field with a sentence."""
    found = [
        {"field": _field_name(tuple(e.get("loc", ()))), "message": _message(e)} for e in errors
    ]
    return {"detail": "The request is invalid.", "code": "validation_error", "errors": found}


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
        body.update(code="validation_error", errors=[{"field": "body", "message": detail}])
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _sqlstate(exc: BaseException) -> str | None:
    original = getattr(exc, "orig", None)
    for candidate in (exc, original, getattr(original, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


# SQLSTATE classes that mean "the database cannot serve this right now, retry": connection
# exception (08), transaction rollback such as a deadlock (40), insufficient resources (53),
# operator intervention such as a shutdown or restart (57).
_UNAVAILABLE_CLASSES = ("08", "40", "53", "57")


# Errors raised by the database layer: SQLAlchemy's wrappers, or the bare driver's own on the
# paths that use it directly (`app.database.driver_connection`).
_DATABASE_ERRORS = (sa_exc.DBAPIError, asyncpg.PostgresError)
# No connection to be had: the pool's wait ran out, or the driver's "connection is closed / was
# lost" family.
_LOST_DATABASE = (sa_exc.TimeoutError, asyncpg.InterfaceError, ConnectionError, OSError)


def _unavailable(exc: Exception) -> bool:
    if isinstance(exc, asyncpg.InterfaceError):
        return True  # the driver's own "connection closed or lost"
    if isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated
        or isinstance(exc, (sa_exc.InterfaceError, sa_exc.OperationalError))
    ):
        return True
    return (_sqlstate(exc) or "").startswith(_UNAVAILABLE_CLASSES)


def database_failure(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """The status and body for a failure of the database layer that is not a bug: input it
    cannot store (400), or the database unavailable (503). None for anything else."""
    if isinstance(exc, _DATABASE_ERRORS) and (_sqlstate(exc) or "").startswith("22"):
        # SQLSTATE class 22 is "data exception": the input itself (a NUL byte in a text, a
        # number out of range) cannot be stored, so it is the caller's 400, not our 500.
        body = {
            "detail": "The request is invalid.",
            "code": "validation_error",
            "errors": [{"field": "body", "message": "a value cannot be stored as given"}],
        }
        return 400, body
    if isinstance(exc, _DATABASE_ERRORS) and not _unavailable(exc):
        return None
    if not isinstance(exc, (*_DATABASE_ERRORS, *_LOST_DATABASE)):
        return None
    logger.warning("database unavailable: %s", type(exc).__name__)
    return 503, DatabaseUnavailable("The database is unavailable; retry shortly.").body()


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
    for kind in (*_DATABASE_ERRORS, *_LOST_DATABASE):
        app.add_exception_handler(kind, _database_error)
