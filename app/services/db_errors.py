"""Recognise which constraint a database error broke, so services can answer with a 409."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError


def violated_constraint(exc: DBAPIError) -> str | None:
    """The constraint name asyncpg reports for a unique/exclusion/check violation."""
    original = getattr(exc.orig, "__cause__", None) or exc.orig
    return getattr(original, "constraint_name", None)
