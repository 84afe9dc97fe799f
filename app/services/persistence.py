"""What every ORM service does the same way with rows: a missing row is a 404; a new or changed
row is read back with what the database filled in, and one that breaks a unique constraint is
that constraint's 409 (never a 500); an update writes only the fields that differ; a list's
date range includes both ends."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from app.database import violated_constraint
from app.errors import Conflict, NotFound
from app.models import Base

Row = TypeVar("Row", bound=Base)

# A unique constraint's name -> the 409 breaking it means, and its sentence.
Conflicts = Mapping[str, tuple[type[Conflict], str]]
NO_CONFLICTS: Conflicts = {}


async def get_or_404(
    session: AsyncSession,
    model: type[Row],
    row_id: uuid.UUID,
    what: str,
    *,
    lock: bool | dict[str, bool] = False,
    reload: bool = False,
) -> Row:
    """The row with this id, or `NotFound` ("`what` `row_id` was not found.").

    One `SELECT ... WHERE id = :id` (with `FOR UPDATE`, or its `lock` flags), or none when the
    session already holds the row unlocked; `reload` overwrites what the session holds with
    what the database has (after a lock, another transaction may have changed it)."""
    row = await session.get(
        model, row_id, with_for_update=lock or None, populate_existing=reload or None
    )
    if row is None:
        raise NotFound.of(what, row_id)
    return row


async def flush_or_conflict(session: AsyncSession, conflicts: Conflicts) -> None:
    """Flush the session's changes; a unique constraint named in `conflicts` that they break
    raises its 409. Any other integrity error is a bug and propagates."""
    try:
        await session.flush()
    except IntegrityError as exc:
        conflict = conflicts.get(violated_constraint(exc) or "")
        if conflict is None:
            raise
        error, sentence = conflict
        raise error(sentence) from None


async def create_row(session: AsyncSession, row: Row, conflicts: Conflicts = NO_CONFLICTS) -> Row:
    """Insert `row` and read it back with its defaults (id, timestamps)."""
    session.add(row)
    await flush_or_conflict(session, conflicts)
    await session.refresh(row)
    return row


async def update_row(
    session: AsyncSession, row: Base, changes: Mapping[str, Any], conflicts: Conflicts
) -> dict[str, Any]:
    """Set the fields of `changes` that differ from `row`'s and answer those. An update that
    changes nothing writes nothing (no statement, `updated_at` kept)."""
    changed = {key: value for key, value in changes.items() if getattr(row, key) != value}
    for key, value in changed.items():
        setattr(row, key, value)
    if changed:
        await flush_or_conflict(session, conflicts)
        await session.refresh(row)
    return changed


def in_dates(
    query: Select[Row],
    column: QueryableAttribute[dt.date],
    start: dt.date | None,
    end: dt.date | None,
) -> Select[Row]:
    """`query` narrowed to the dates `start`..`end` of `column`: a list's date range includes
    both ends, and either may be left open (SPEC)."""
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column <= end)
    return query
