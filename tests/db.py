"""A throw-away database for the test run: on TEST_DATABASE_URL's server, or embedded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    admin = make_url(url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """Yield the URL of a fresh, empty database; drop it (or the embedded server) afterwards."""
    base = os.environ.get("TEST_DATABASE_URL")
    server = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if not base:
        import pgserver

        tmp = tempfile.TemporaryDirectory(prefix="clinic-pg-")
        server = pgserver.get_server(Path(tmp.name), cleanup_mode="delete")
        base = server.get_uri()
    name = f"clinic_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(base, name)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()
        if tmp is not None:
            tmp.cleanup()
