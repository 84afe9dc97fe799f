"""Claiming jobs that queue in lanes: at most one job of a lane in flight, across dispatchers.

A lane is a receiver that may be slow or down on its own (a webhook endpoint): holding one
of its jobs in flight at a time means a receiver that hangs holds one slot of a dispatcher,
never all of them, and its backlog waits in the queue instead of in the slots.

The claim is two statements in one transaction. The first walks the lanes that have work
(an index skip scan: one probe per lane, however long its backlog) and takes a transaction
advisory lock on each lane it chooses, skipping lanes another claim holds. The second, with a
snapshot taken after those locks, leases each locked lane's oldest due job unless one of the
lane's jobs is in flight. A claim that locks a lane after another released it therefore sees
that other claim's commit: two dispatchers never both put a lane's jobs in flight.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

# The advisory lock space of outbox lanes (the first of the two keys), 'OBXL'.
_LOCK_SPACE = 0x4F42584C

# A lane's jobs: due, or held under a lease that ran out (its holder is gone).
_DUE = "c.status = 'pending' AND c.available_at <= now()"
_EXPIRED = "c.status = 'in_progress' AND c.locked_until < now()"
_BUSY = """EXISTS (SELECT 1 FROM outbox_jobs busy
                  WHERE busy.target = :target AND busy.lane = l.lane
                    AND busy.status = 'in_progress' AND busy.locked_until >= now())"""
# A lane's next job, from the two partial indexes: the oldest due or expired one.
_NEXT = f"""
    CROSS JOIN LATERAL (
        SELECT next.id, next.available_at FROM (
            (SELECT c.id, c.available_at FROM outbox_jobs c
              WHERE c.target = :target AND c.lane = l.lane AND {_DUE}
              ORDER BY c.available_at, c.id LIMIT 1)
            UNION ALL
            (SELECT c.id, c.available_at FROM outbox_jobs c
              WHERE c.target = :target AND c.lane = l.lane AND {_EXPIRED}
              ORDER BY c.available_at, c.id LIMIT 1)
        ) AS next
        ORDER BY next.available_at, next.id LIMIT 1
    ) AS pick"""

_LOCK_LANES = text(
    f"""
    WITH RECURSIVE waiting(lane) AS (
        (SELECT c.lane FROM outbox_jobs c
          WHERE c.target = :target AND c.status = 'pending' AND c.lane IS NOT NULL
          ORDER BY c.lane LIMIT 1)
        UNION ALL
        SELECT (SELECT c.lane FROM outbox_jobs c
                 WHERE c.target = :target AND c.status = 'pending' AND c.lane > waiting.lane
                 ORDER BY c.lane LIMIT 1)
          FROM waiting WHERE waiting.lane IS NOT NULL
    ), lanes AS (
        SELECT lane FROM waiting WHERE lane IS NOT NULL
        UNION
        SELECT c.lane FROM outbox_jobs c
         WHERE c.target = :target AND c.lane IS NOT NULL AND {_EXPIRED}
    ), ready AS MATERIALIZED (
        SELECT l.lane, pick.available_at FROM lanes l {_NEXT}
         WHERE NOT {_BUSY}
         ORDER BY pick.available_at
    )
    SELECT lane FROM ready
     WHERE pg_try_advisory_xact_lock({_LOCK_SPACE}, hashtext(CAST(lane AS text)))
     LIMIT :limit
    """
)

_LEASE = text(
    f"""
    UPDATE outbox_jobs AS j
       SET status = 'in_progress', locked_by = :worker, attempts = j.attempts + 1,
           locked_until = now() + make_interval(secs => :lease), updated_at = now()
     WHERE j.id IN (
            SELECT pick.id FROM unnest(CAST(:lanes AS uuid[])) AS l(lane) {_NEXT}
             WHERE NOT {_BUSY})
       AND ((j.status = 'pending' AND j.available_at <= now())
            OR (j.status = 'in_progress' AND j.locked_until < now()))
    RETURNING j.id, j.target, j.aggregate_id, j.attempts, j.lane
    """
)


async def claim(
    session: AsyncSession, worker: str, target: str, limit: int, lease_seconds: float
) -> list[Row[Any]]:
    """Lease the oldest due job of up to `limit` lanes that have none in flight.

    Must run in a transaction of its own, committed right after: the lanes' locks are held
    until it ends.
    """
    lanes: list[uuid.UUID] = list(
        (await session.execute(_LOCK_LANES, {"target": target, "limit": limit})).scalars()
    )
    if not lanes:
        return []
    params = {"target": target, "lanes": lanes, "worker": worker, "lease": lease_seconds}
    return list(await session.execute(_LEASE, params))
