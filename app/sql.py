"""Hand-written statements: `Sql` (`:named` parameters compiled once to the driver's `$n`), the
VALUES lists of statements that take several rows, and running them on a session's driver
connection (`database.driver`: inside its unit of work's transaction, or at once).

For the hottest statements only (availability, the search, booking, idempotency): on them
SQLAlchemy's statement layer costs more CPU than the round trip itself (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app.database import discard_if_broken, driver

T = TypeVar("T")

_PARAMETER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


# Statements that take several rows at once (bookings written together, the days they read)
# take them as a VALUES list, in one of these sizes, the unused rows empty (all NULL). A VALUES
# list tells the plan PostgreSQL keeps how many rows come; rows as arrays, of a length a kept
# plan cannot know, made PostgreSQL plan such a statement anew on every execution, which cost
# more than running it. A few sizes, not one per count: each size is one more statement to
# prepare on every connection (and, with `DB_PLAN_CACHE_MODE=auto`, to plan five times).
VALUES_SIZES = (1, 2, 4, 8, 16)


def values_list(columns: Mapping[str, str], size: int) -> str:
    """`size` rows of `:column_i::type` parameters for `columns` (name: SQL type), each ending
    in its ordinal `n` (0, 1, ...), for `VALUES`."""
    return ",\n".join(
        "(" + "".join(f":{name}_{i}::{kind}, " for name, kind in columns.items()) + f"{i})"
        for i in range(size)
    )


def values_of(
    columns: Mapping[str, str],
    rows: Sequence[Mapping[str, object]],
    sizes: Sequence[int] = VALUES_SIZES,
) -> tuple[int, dict[str, object]]:
    """The size of `values_list` (the first of `sizes` that holds `rows`), and its
    parameters (the rest NULL)."""
    size = next((size for size in sizes if size >= len(rows)), None)
    if size is None or not rows:
        raise ValueError(f"{len(rows)} rows for one statement")
    values: dict[str, object] = dict.fromkeys(
        (f"{name}_{i}" for i in range(len(rows), size) for name in columns), None
    )
    for i, row in enumerate(rows):
        for name in columns:
            values[f"{name}_{i}"] = row[name]
    return size, values


class Sql:
    """A hand-written statement with `:name` parameters, compiled once to the driver's `$n`.

    Values are passed by name (`sql.args(doctor_id=..., day=...)`), so a statement with many
    parameters reads like a call with keywords, and a missing or unknown name fails loudly.

    `standalone`: the statement is complete by itself (a read, or a change that needs nothing
    else to be atomic with it). Run before its unit of work has opened a transaction, it runs
    at once and does not open one: a read then sees what any statement would (read
    committed), and a change commits as it is made. Once a transaction is open (anything not
    standalone opens it), every statement runs inside it. A booking without an idempotency
    key is two standalone statements; with one, the key's claim opens the transaction first.
    """

    __slots__ = ("_expected", "names", "standalone", "text")

    def __init__(self, text: str, *, standalone: bool = False) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.text = _PARAMETER.sub(number, text)
        self.names = tuple(names)
        self._expected = frozenset(names)
        self.standalone = standalone

    def args(self, **values: object) -> list[object]:
        if values.keys() != self._expected:
            missing = self._expected - values.keys()
            unknown = values.keys() - self._expected
            raise TypeError(f"SQL parameters: missing {sorted(missing)}, unknown {sorted(unknown)}")
        return [values[name] for name in self.names]


async def fetch(session: AsyncSession, sql: Sql, **values: object) -> list[asyncpg.Record]:
    args = sql.args(**values)
    return await _run(session, sql, lambda connection: connection.fetch(sql.text, *args))


async def fetchrow(session: AsyncSession, sql: Sql, **values: object) -> asyncpg.Record | None:
    args = sql.args(**values)
    return await _run(session, sql, lambda connection: connection.fetchrow(sql.text, *args))


async def execute(session: AsyncSession, sql: Sql, **values: object) -> str:
    args = sql.args(**values)
    return await _run(session, sql, lambda connection: connection.execute(sql.text, *args))


async def _run(
    session: AsyncSession, sql: Sql, statement: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    connection = await driver(session, standalone=sql.standalone)
    try:
        return await statement(connection)
    except BaseException:
        await discard_if_broken(session, connection)
        raise
