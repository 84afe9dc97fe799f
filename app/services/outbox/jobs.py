"""The transactional outbox: enqueue in the caller's transaction, claim with leases, settle.

Claims use `FOR UPDATE SKIP LOCKED` so any number of dispatchers share the queue, and a lease
(`locked_until`) so a job held by a crashed dispatcher is claimed again once it runs out.
Webhook jobs queue in lanes, one per endpoint, and are claimed one per lane (`lanes`).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.outbox import lanes

CALENDAR = "calendar"
RAG = "rag"
WEBHOOK = "webhook"
# Not a mirror: "a doctor's slots may have come free" (aggregate: the doctor) or "this entry
# waits" (aggregate: the entry), for the waitlist's matcher (`services/waitlist`).
WAITLIST = "waitlist"
TARGETS = (CALENDAR, RAG, WEBHOOK, WAITLIST)
# Targets whose every job has a lane (its receiver): claimed at most one per lane at a time.
LANED = frozenset({WEBHOOK})
NOTIFY_CHANNEL = "outbox"


def queue_jobs(target: str, aggregate_ids: str, prefix: str = "", *, laned: bool = False) -> str:
    """Two CTEs, `queued` and `woken`, that queue a `target` job for each id the SELECT
    `aggregate_ids` yields and wake the dispatchers; the statement must read `woken`.
    (`prefix` names them apart where one statement queues for two targets.) For a target in
    `LANED`, `laned` is required and the SELECT yields two columns: the id and its lane.

    The one way a job is queued, used as it is by `enqueue` and inside the booking statement.
    A job already waiting for the same aggregate absorbs the new change (one pending job per
    aggregate). NOTIFY is delivered when, and only if, the transaction commits.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown outbox target {target!r}")
    if laned != (target in LANED):
        raise ValueError(f"outbox target {target!r} {'has' if laned else 'has no'} lanes")
    changed = "changed(aggregate_id, lane)" if laned else "changed(aggregate_id)"
    lane = "lane" if laned else "NULL"
    return f"""
    {prefix}queued AS (
        INSERT INTO outbox_jobs (target, aggregate_id, lane)
        SELECT '{target}', aggregate_id, {lane} FROM ({aggregate_ids}) AS {changed}
        ON CONFLICT (target, aggregate_id) WHERE status = 'pending'
        DO UPDATE SET available_at = now(), attempts = 0, updated_at = now()
        RETURNING 1
    ), {prefix}woken AS (
        SELECT pg_notify('{NOTIFY_CHANNEL}', '{target}')
          FROM (SELECT 1 FROM {prefix}queued LIMIT 1) AS any_queued
    )"""


async def enqueue(
    session: AsyncSession,
    target: str,
    aggregate_ids: Iterable[uuid.UUID],
    lane: uuid.UUID | None = None,
) -> None:
    """Owe the mirror the current state of these aggregates, in the caller's transaction
    (in `lane`, for a target in `LANED`)."""
    # Sorted, so two transactions queueing overlapping sets take the index locks in one order.
    ids = sorted(set(aggregate_ids))
    if not ids:
        return
    laned = lane is not None
    select = "SELECT unnest(CAST(:ids AS uuid[]))" + (", CAST(:lane AS uuid)" if laned else "")
    statement = f"""
        WITH {queue_jobs(target, select, laned=laned)}
        SELECT count(*) FROM woken
    """
    await session.execute(text(statement), {"ids": ids, "lane": lane} if laned else {"ids": ids})


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    target: str
    aggregate_id: uuid.UUID
    attempts: int
    lane: uuid.UUID | None = None


_CLAIM = text(
    """
    UPDATE outbox_jobs AS j
       SET status = 'in_progress', locked_by = :worker, attempts = j.attempts + 1,
           locked_until = now() + make_interval(secs => :lease), updated_at = now()
     WHERE j.id IN (
        SELECT c.id FROM outbox_jobs c
         WHERE c.target = :target
           AND ((c.status = 'pending' AND c.available_at <= now())
                OR (c.status = 'in_progress' AND c.locked_until < now()))
           AND NOT EXISTS (
                SELECT 1 FROM outbox_jobs busy
                 WHERE busy.target = c.target AND busy.aggregate_id = c.aggregate_id
                   AND busy.id <> c.id AND busy.status = 'in_progress'
                   AND busy.locked_until >= now())
         ORDER BY c.available_at, c.id
         LIMIT :limit
         FOR UPDATE SKIP LOCKED)
    RETURNING j.id, j.target, j.aggregate_id, j.attempts
    """
)


async def claim(
    session: AsyncSession, worker: str, target: str, limit: int, lease_seconds: float
) -> list[ClaimedJob]:
    """Lease up to `limit` due `target` jobs whose aggregate has no delivery in flight (and,
    for a target in `LANED`, at most one per lane, none of a lane that has one in flight).

    Commit right after: a laned claim holds its lanes' locks until then.
    """
    if target in LANED:
        picked = await lanes.claim(session, worker, target, limit, lease_seconds)
        return [ClaimedJob(r.id, r.target, r.aggregate_id, r.attempts, r.lane) for r in picked]
    rows = await session.execute(
        _CLAIM, {"worker": worker, "target": target, "limit": limit, "lease": lease_seconds}
    )
    return [ClaimedJob(r.id, r.target, r.aggregate_id, r.attempts) for r in rows]


def backoff_seconds(attempts: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a server's Retry-After is a floor."""
    delay = random.uniform(base / 2, min(cap, base * 2 ** max(attempts - 1, 0)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


async def mark_done(
    session: AsyncSession, job: ClaimedJob, worker: str, result: dict[str, Any] | None = None
) -> bool:
    """Settle a delivered job, if this worker still holds it."""
    outcome = await session.execute(
        text(
            "UPDATE outbox_jobs SET status = 'done', locked_by = NULL, locked_until = NULL,"
            " last_error = NULL, result = CAST(:result AS jsonb), finished_at = now(),"
            " updated_at = now() WHERE id = :id AND locked_by = :worker"
            " AND status = 'in_progress'"
        ),
        {"id": job.id, "worker": worker, "result": _json(result)},
    )
    return bool(getattr(outcome, "rowcount", 0))


async def mark_retry(
    session: AsyncSession, job: ClaimedJob, worker: str, error: str, delay: float
) -> bool:
    """Put the job back in the queue after `delay` seconds.

    If a newer change already queued a job for the aggregate, this one is folded into it.
    """
    params = {"id": job.id, "worker": worker, "error": error[:2000], "delay": delay}
    newer = await session.execute(
        text(
            "UPDATE outbox_jobs SET last_error = :error, updated_at = now()"
            " WHERE status = 'pending' AND (target, aggregate_id) ="
            " (SELECT target, aggregate_id FROM outbox_jobs WHERE id = :id)"
            " RETURNING id"
        ),
        params,
    )
    if newer.first() is not None:
        outcome = await session.execute(
            text(
                "UPDATE outbox_jobs SET status = 'done', locked_by = NULL, locked_until = NULL,"
                " last_error = :error, finished_at = now(), updated_at = now()"
                " WHERE id = :id AND locked_by = :worker AND status = 'in_progress'"
            ),
            params,
        )
    else:
        outcome = await session.execute(
            text(
                "UPDATE outbox_jobs SET status = 'pending', locked_by = NULL,"
                " locked_until = NULL, last_error = :error,"
                " available_at = now() + make_interval(secs => :delay), updated_at = now()"
                " WHERE id = :id AND locked_by = :worker AND status = 'in_progress'"
            ),
            params,
        )
    return bool(getattr(outcome, "rowcount", 0))


async def mark_failed(session: AsyncSession, job: ClaimedJob, worker: str, error: str) -> bool:
    outcome = await session.execute(
        text(
            "UPDATE outbox_jobs SET status = 'failed', locked_by = NULL, locked_until = NULL,"
            " last_error = :error, finished_at = now(), updated_at = now()"
            " WHERE id = :id AND locked_by = :worker AND status = 'in_progress'"
        ),
        {"id": job.id, "worker": worker, "error": error[:2000]},
    )
    return bool(getattr(outcome, "rowcount", 0))


async def release(session: AsyncSession, worker: str) -> int:
    """Hand back every job this worker holds (graceful shutdown), to be claimed at once."""
    outcome = await session.execute(
        text(
            "UPDATE outbox_jobs SET status = 'pending', locked_by = NULL, locked_until = NULL,"
            " attempts = greatest(attempts - 1, 0), available_at = now(), updated_at = now()"
            " WHERE locked_by = :worker AND status = 'in_progress'"
            " AND NOT EXISTS (SELECT 1 FROM outbox_jobs p WHERE p.status = 'pending'"
            " AND p.target = outbox_jobs.target AND p.aggregate_id = outbox_jobs.aggregate_id)"
        ),
        {"worker": worker},
    )
    # Where a newer job already waits, the held one is simply superseded.
    await session.execute(
        text(
            "UPDATE outbox_jobs SET status = 'done', locked_by = NULL, locked_until = NULL,"
            " finished_at = now(), updated_at = now()"
            " WHERE locked_by = :worker AND status = 'in_progress'"
        ),
        {"worker": worker},
    )
    return int(getattr(outcome, "rowcount", 0) or 0)


async def has_pending(session: AsyncSession, target: str, aggregate_id: uuid.UUID) -> bool:
    found = await session.execute(
        text(
            "SELECT 1 FROM outbox_jobs WHERE target = :target AND aggregate_id = :id"
            " AND status = 'pending' LIMIT 1"
        ),
        {"target": target, "id": aggregate_id},
    )
    return found.first() is not None


async def requeue_failed(session: AsyncSession, target: str | None = None) -> list[ClaimedJob]:
    """Give failed jobs a fresh set of attempts (where no newer job already waits)."""
    rows = await session.execute(
        text(
            "UPDATE outbox_jobs j SET status = 'pending', attempts = 0, available_at = now(),"
            " finished_at = NULL, updated_at = now()"
            " WHERE j.status = 'failed' AND (CAST(:target AS text) IS NULL OR j.target = :target)"
            " AND NOT EXISTS (SELECT 1 FROM outbox_jobs p WHERE p.status = 'pending'"
            " AND p.target = j.target AND p.aggregate_id = j.aggregate_id)"
            " AND j.id = (SELECT max(f.id) FROM outbox_jobs f WHERE f.status = 'failed'"
            " AND f.target = j.target AND f.aggregate_id = j.aggregate_id)"
            " RETURNING j.id, j.target, j.aggregate_id, j.attempts, j.lane"
        ),
        {"target": target},
    )
    jobs = [ClaimedJob(r.id, r.target, r.aggregate_id, r.attempts, r.lane) for r in rows]
    if jobs:
        await session.execute(
            text("SELECT pg_notify(:channel, 'retry')"), {"channel": NOTIFY_CHANNEL}
        )
    return jobs


async def stats(session: AsyncSession, target: str) -> dict[str, Any]:
    counts = {"pending": 0, "in_progress": 0, "done": 0, "failed": 0}
    rows = await session.execute(
        text("SELECT status, count(*) FROM outbox_jobs WHERE target = :t GROUP BY status"),
        {"t": target},
    )
    for status, count in rows:
        counts[status] = count
    oldest = await session.scalar(
        text(
            "SELECT extract(epoch FROM now() - min(created_at)) FROM outbox_jobs"
            " WHERE target = :t AND status IN ('pending', 'in_progress')"
        ),
        {"t": target},
    )
    errors = await session.execute(
        text(
            "SELECT id, aggregate_id, status, attempts, last_error, updated_at FROM outbox_jobs"
            " WHERE target = :t AND last_error IS NOT NULL AND status <> 'done'"
            " ORDER BY updated_at DESC LIMIT 10"
        ),
        {"t": target},
    )
    return {
        "jobs": counts,
        "oldest_pending_age_seconds": round(float(oldest), 3) if oldest is not None else None,
        "recent_errors": [
            {
                "job_id": r.id,
                "aggregate_id": str(r.aggregate_id),
                "status": r.status,
                "attempts": r.attempts,
                "error": r.last_error,
                "at": r.updated_at.isoformat(),
            }
            for r in errors
        ],
    }


async def depth(session: AsyncSession) -> list[tuple[str, str, int, float]]:
    """Jobs by target and state, with the age in seconds of the oldest one still owed."""
    rows = await session.execute(
        text(
            "SELECT target, status, count(*),"
            " coalesce(extract(epoch FROM now() - min(created_at))"
            " FILTER (WHERE status IN ('pending', 'in_progress')), 0)"
            " FROM outbox_jobs GROUP BY target, status"
        )
    )
    return [(target, status, int(jobs), float(oldest)) for target, status, jobs, oldest in rows]


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str)


async def purge_finished(session: AsyncSession, keep_days: int = 7) -> None:
    await session.execute(
        text(
            "DELETE FROM outbox_jobs WHERE status = 'done'"
            " AND finished_at < now() - make_interval(days => :days)"
        ),
        {"days": keep_days},
    )


async def wake_backlog(session: AsyncSession, job: ClaimedJob) -> int:
    """The job's receiver answered again: let every job of its target (and lane) waiting out
    a backoff be claimed now. Only its lane: one endpoint recovering says nothing of another."""
    lane = "lane IS NULL" if job.lane is None else "lane = :lane"
    outcome = await session.execute(
        text(
            "UPDATE outbox_jobs SET available_at = now(), updated_at = now()"
            f" WHERE target = :target AND {lane} AND status = 'pending' AND available_at > now()"
        ),
        {"target": job.target} if job.lane is None else {"target": job.target, "lane": job.lane},
    )
    return int(getattr(outcome, "rowcount", 0) or 0)
