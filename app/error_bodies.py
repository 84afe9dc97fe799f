"""The bodies of failures that are not a `ServiceError` (which carries its own): pydantic's
validation errors, and a failure of the database layer. REST's handlers
(`app/error_handlers.py`) and the MCP tools (`app/agent/answers.py`) answer with these, so a
caller gets the same body either way."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc

from app.error_messages import problem_of, sentence
from app.errors import INVALID, DatabaseUnavailable

logger = logging.getLogger("app.errors")


def _field_name(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "body"  # its location is a character's offset, not a field
    parts = [str(p) for p in error.get("loc", ())]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """The 400 body for pydantic's errors: each field with a sentence of ours
    (`app/error_messages.py`)."""
    found = []
    for error in errors:
        field = _field_name(error)
        found.append({"field": field, "message": sentence(field, problem_of(error))})
    return {"detail": INVALID, "code": "validation_error", "errors": found}


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
DATABASE_ERRORS = (sa_exc.DBAPIError, asyncpg.PostgresError)
# No connection to be had: the pool's wait ran out, or the driver's "connection is closed / was
# lost" family.
LOST_DATABASE = (sa_exc.TimeoutError, asyncpg.InterfaceError, ConnectionError, OSError)


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
    if isinstance(exc, DATABASE_ERRORS) and (_sqlstate(exc) or "").startswith("22"):
        # SQLSTATE class 22 is "data exception": the input itself (a NUL byte in a text, a
        # number out of range) cannot be stored, so it is the caller's 400, not our 500.
        body = {
            "detail": INVALID,
            "code": "validation_error",
            "errors": [{"field": "body", "message": "a value in the body cannot be stored"}],
        }
        return 400, body
    if isinstance(exc, DATABASE_ERRORS) and not _unavailable(exc):
        return None
    if not isinstance(exc, (*DATABASE_ERRORS, *LOST_DATABASE)):
        return None
    logger.warning("database unavailable: %s", type(exc).__name__)
    return 503, DatabaseUnavailable("The database is unavailable; retry shortly.").body()
