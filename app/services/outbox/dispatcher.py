"""The outbox dispatcher: claims due jobs, delivers them to their mirror, records the outcome.

Runs inside the API process (default) or alone (`make worker`); any number run safely at once.
It wakes on `NOTIFY outbox` right after a commit and polls as a fallback.

Each target has its own budget of `DISPATCHER_CONCURRENCY` jobs in flight, so webhooks that
hang for their timeout never take the Google Calendar or RAG mirror's slots; and webhook jobs
are claimed at most one per endpoint (`outbox.lanes`), so one endpoint that hangs holds one
webhook slot, never another endpoint's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.config import Settings
from app.database import Sessions, async_url, unit_of_work
from app.services.outbox import jobs as outbox
from app.services.outbox.delivery import PermanentDeliveryError, RetryableDeliveryError
from app.services.outbox.jobs import ClaimedJob

logger = logging.getLogger("app.dispatcher")


class Mirror(Protocol):
    target: str

    async def deliver(self, job: ClaimedJob) -> dict[str, Any]: ...

    async def lock(self, session: AsyncSession, job: ClaimedJob) -> None:
        """Lock the job's aggregate first in its settle transaction, as the writers that queue
        jobs do (aggregate, then its outbox rows): the opposite order could deadlock."""

    async def record(
        self,
        session: AsyncSession,
        job: ClaimedJob,
        status: str,
        error: str | None,
        result: dict[str, Any] | None,
    ) -> None: ...

    async def aclose(self) -> None: ...


class Chore(Protocol):
    """Work a dispatcher does every few seconds besides delivering: turning what has come due
    (a reminder) into outbox jobs, in its own units of work. Idempotent, so every dispatcher
    does it."""

    every_seconds: float

    async def run(self) -> None: ...


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: Sessions,
        database_url: str,
        mirrors: list[Mirror],
        worker_id: str | None = None,
        chores: Sequence[Chore] = (),
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.database_url = database_url
        self.mirrors = {m.target: m for m in mirrors}
        self.chores = tuple(chores)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: dict[str, set[asyncio.Task[None]]] = {t: set() for t in self.mirrors}
        # How many attempts a job gets: a mirror that counts its own (the webhook mirror gives
        # up after WEBHOOK_MAX_ATTEMPTS) must not be cut short by the dispatcher's limit.
        self._attempts_allowed = {
            t: settings.webhook_max_attempts
            if t == outbox.WEBHOOK
            else settings.dispatcher_max_attempts
            for t in self.mirrors
        }

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until `stop()`; then finish what is in flight and hand back the rest."""
        if not self.mirrors:
            return
        listener = asyncio.create_task(self._listen(), name="outbox-listener")
        chores = [asyncio.create_task(self._repeat(chore)) for chore in self.chores]
        try:
            while not self._stopping.is_set():
                try:
                    await self._fill()
                except Exception:
                    logger.warning("outbox claim failed; retrying", exc_info=True)
                    await self._sleep(self.settings.dispatcher_poll_seconds)
                    continue
                await self._wait_for_work()
        finally:
            for task in (listener, *chores):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if in_flight := self._all_in_flight():
                await asyncio.wait(in_flight, timeout=self.settings.dispatcher_lease_seconds)
            await self._release()
            for mirror in self.mirrors.values():
                await mirror.aclose()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run_until_idle(self) -> None:
        """Deliver every due job and wait for them (tests and one-shot commands)."""
        while True:
            await self._fill()
            if not (in_flight := self._all_in_flight()):
                return
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)

    def _all_in_flight(self) -> set[asyncio.Task[None]]:
        return set().union(*self._in_flight.values())

    def _free(self) -> dict[str, int]:
        """Each target's free slots, for the targets that have any."""
        budget = self.settings.dispatcher_concurrency
        free = {t: budget - len(tasks) for t, tasks in self._in_flight.items()}
        return {t: n for t, n in free.items() if n > 0}

    async def _fill(self) -> None:
        free = self._free()
        if not free:
            return
        # One transaction for every target's claim (a laned claim's locks go with its commit).
        async with unit_of_work(self.sessionmaker) as session:
            jobs = [
                job
                for target, limit in free.items()
                for job in await outbox.claim(
                    session, self.worker_id, target, limit, self.settings.dispatcher_lease_seconds
                )
            ]
        for job in jobs:
            task = asyncio.create_task(self._process(job), name=f"outbox-{job.id}")
            tasks = self._in_flight[job.target]
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _wait_for_work(self) -> None:
        in_flight = self._all_in_flight()
        if not self._free():
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            return
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
        _, pending = await asyncio.wait(
            waiters | in_flight,
            timeout=self.settings.dispatcher_poll_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for waiter in pending:
            if waiter not in in_flight:
                waiter.cancel()
        self._wake.clear()

    async def _repeat(self, chore: Chore) -> None:
        while not self._stopping.is_set():
            try:
                await chore.run()
            except Exception:
                logger.warning("dispatcher chore failed; will try again", exc_info=True)
            await self._sleep(chore.every_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # -- one job -----------------------------------------------------------------------------

    async def _process(self, job: ClaimedJob) -> None:
        mirror = self.mirrors[job.target]
        started = time.perf_counter()
        try:
            result = await mirror.deliver(job)
        except RetryableDeliveryError as exc:
            metrics.DELIVERIES.labels(job.target, "retry").inc()
            await self._settle_retry(mirror, job, exc)
        except PermanentDeliveryError as exc:
            metrics.DELIVERIES.labels(job.target, "failed").inc()
            await self._settle(mirror, job, "failed", str(exc), None)
            logger.warning("delivery failed for good", extra=self._log(job, error=str(exc)))
        except Exception as exc:  # a bug in a mirror must not stop the dispatcher
            metrics.DELIVERIES.labels(job.target, "retry").inc()
            logger.exception("delivery crashed", extra=self._log(job))
            await self._settle_retry(mirror, job, RetryableDeliveryError(type(exc).__name__))
        else:
            metrics.DELIVERIES.labels(job.target, "delivered").inc()
            await self._settle(mirror, job, "synced", None, result, recovered=job.attempts > 1)
            logger.debug(
                "delivered",
                extra=self._log(job, ms=round((time.perf_counter() - started) * 1000, 1)),
            )

    async def _settle_retry(
        self, mirror: Mirror, job: ClaimedJob, exc: RetryableDeliveryError
    ) -> None:
        if job.attempts >= self._attempts_allowed[job.target]:
            error = f"{exc} (gave up after {job.attempts} attempts)"
            await self._settle(mirror, job, "failed", error, None)
            logger.warning("delivery gave up", extra=self._log(job, error=error))
            return
        delay = outbox.backoff_seconds(
            job.attempts,
            self.settings.dispatcher_backoff_base_seconds,
            self.settings.dispatcher_backoff_max_seconds,
            exc.retry_after,
        )

        async def record(session: AsyncSession) -> None:
            await mirror.lock(session, job)
            if await outbox.mark_retry(session, job, self.worker_id, str(exc), delay):
                await mirror.record(session, job, "pending", str(exc), None)

        await self._write_outcome(job, record)
        logger.info(
            "delivery will be retried",
            extra=self._log(job, error=str(exc), delay_s=round(delay, 2)),
        )

    async def _settle(
        self,
        mirror: Mirror,
        job: ClaimedJob,
        status: str,
        error: str | None,
        result: dict[str, Any] | None,
        *,
        recovered: bool = False,
    ) -> None:
        async def record(session: AsyncSession) -> None:
            await mirror.lock(session, job)
            if status == "failed":
                held = await outbox.mark_failed(session, job, self.worker_id, error or "")
            else:
                held = await outbox.mark_done(session, job, self.worker_id, result)
            if held:
                await mirror.record(session, job, status, error, result)
            if recovered and await outbox.wake_backlog(session, job):
                self._wake.set()

        await self._write_outcome(job, record)

    async def _write_outcome(
        self, job: ClaimedJob, write: Callable[[AsyncSession], Awaitable[None]]
    ) -> None:
        """Record a delivery's outcome, retrying while the database is away.

        Gives up when the lease runs out: the job is then claimed again and delivered once
        more, which every mirror tolerates (deliveries are idempotent).
        """
        deadline = time.monotonic() + self.settings.dispatcher_lease_seconds
        pause = 0.5
        while True:
            try:
                async with unit_of_work(self.sessionmaker) as session:
                    await write(session)
                return
            except Exception:
                if time.monotonic() + pause > deadline or self._stopping.is_set():
                    logger.warning(
                        "could not record a delivery; its lease will expire",
                        extra=self._log(job),
                        exc_info=True,
                    )
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _log(self, job: ClaimedJob, **extra: Any) -> dict[str, Any]:
        return {
            "job_id": job.id,
            "target": job.target,
            "aggregate_id": str(job.aggregate_id),
            "attempt": job.attempts,
            "worker": self.worker_id,
            **extra,
        }

    # -- housekeeping ------------------------------------------------------------------------

    async def _release(self) -> None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                released = await outbox.release(session, self.worker_id)
            if released:
                logger.info("released outbox jobs", extra={"count": released})
        except Exception:
            logger.warning("could not release outbox jobs; their leases will expire")

    async def _listen(self) -> None:
        """Hold a LISTEN connection; reconnect with backoff when the database goes away."""
        dsn = async_url(self.database_url).set(drivername="postgresql")
        delay = 1.0
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=5)
                await conn.add_listener(outbox.NOTIFY_CHANNEL, lambda *_: self._wake.set())
                delay = 1.0
                self._wake.set()  # catch up on anything committed while not listening
                while not self._stopping.is_set() and not conn.is_closed():
                    await self._sleep(5)
                    await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.debug("outbox listener lost its connection", exc_info=True)
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
