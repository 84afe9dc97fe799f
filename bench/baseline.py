"""The baseline: a minimal ASGI app on the service's own stack (uvicorn, SQLAlchemy, asyncpg).

`GET /doctor/{id}` does one indexed primary-key select and answers a small JSON body. The
service's figures are reported as ratios to this app's, measured in the same run.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from sqlalchemy import text

from app.config import Settings
from app.database import create_engine

_settings = Settings(_env_file=None)  # type: ignore[call-arg]
# Autocommit like the service's availability reads: one statement, one round trip.
_engine = create_engine(_settings, os.environ["DATABASE_URL"]).execution_options(
    isolation_level="AUTOCOMMIT"
)
_QUERY = text("SELECT id, name, specialization FROM doctors WHERE id = :id")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _engine.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    doctor_id = uuid.UUID(scope["path"].rsplit("/", 1)[-1])
    async with _engine.connect() as conn:
        row = (await conn.execute(_QUERY, {"id": doctor_id})).one()
    body = json.dumps(
        {"id": str(row.id), "name": row.name, "specialization": row.specialization}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
