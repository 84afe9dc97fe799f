"""The matcher: offers freed slots to waiting entries, off every request.

A change that may free a slot queues a `waitlist` outbox job for its doctor in its own
transaction (migration 0014's triggers); a new entry, or one waiting again, queues one for
itself. The dispatcher runs each job here (`WaitlistMatcher`): a round serves the entries
in scope oldest first, each its earliest matching free slot (`wishes.earliest`, on the free
slots availability offers, `queries.FreeSlots`), held for it (`offers.offer`). So a cancel
costs one queued job, however long the list, and an older entry is always served first.

Time frees slots with no change to queue a job (a hold running out, an offer's hold among
them, the booking horizon moving on a day): `sweep`, every `WAITLIST_SWEEP_SECONDS` in each
process that dispatches, hands back expired offers and serves the entries and doctors they
concern, and on a new day (and at start) serves everyone.

Race safety: a round holds one transaction-level advisory lock, so rounds run one at a time
across processes and each decides on what the one before committed; a slot is held with the
hold machinery's versioned claim (never twice), and an entry is taken only if still waiting
and not locked by a change in flight (never two offers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.database import Sessions, unit_of_work
from app.services.context import Clinic
from app.services.outbox import jobs
from app.services.outbox.jobs import ClaimedJob
from app.services.waitlist import offers
from app.services.waitlist.offers import Offered
from app.services.waitlist.queries import (
    PAGE,
    START,
    FreeSlots,
    Scope,
    doctors_among,
    last_date,
    waiting,
)
from app.services.waitlist.wishes import SlotKey, Wish, earliest

logger = logging.getLogger("app.waitlist")

# pg_advisory_xact_lock key of a round: "waitlist" as eight bytes.
_ROUND_LOCK = int.from_bytes(b"waitlist", "big", signed=True)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
# Slots tried per entry in one round before it waits for the next (each failed try means a
# change committed meanwhile, and that change queues a round of its own).
_TRIES = 3


async def serve(session: AsyncSession, scope: Scope, clinic: Clinic, minutes: int) -> int:
    """One round, in the caller's transaction: offer each waiting entry in `scope`, oldest
    first, its earliest matching free slot, held for `minutes`. Answers the offers made.

    Read a page of entries at a time, it stops once the doctors in scope have no free slot
    left: a cancel's round then reads the oldest few entries, not the whole list. The younger
    entries it leaves fit no slot of those doctors, and any other doctor's free slot they fit
    has a round of its own owed (its own freeing change's, or theirs as they joined or came
    back to waiting)."""
    await session.execute(_LOCK, {"key": _ROUND_LOCK})
    today = clinic.today
    last = await last_date(session)
    if last is None or last < today:
        return 0
    free = FreeSlots(session, clinic, last)
    scope = await _widened(session, scope, free, clinic)
    doctors = [] if scope.everything else await doctors_among(session, scope.ids)
    taken: set[SlotKey] = set()
    made = 0
    after = None
    while True:
        page = await waiting(session, scope, today, after=after or START)
        for wish in page:
            made += await _serve_one(session, wish, free, taken, clinic, minutes)
        if len(page) < PAGE or (not scope.everything and not await free.any_free(doctors)):
            return made
        after = (page[-1].created_at, page[-1].entry_id)


async def _serve_one(
    session: AsyncSession,
    wish: Wish,
    free: FreeSlots,
    taken: set[SlotKey],
    clinic: Clinic,
    minutes: int,
) -> int:
    """Offer `wish` its earliest fit, trying again (a few times) if it was taken meanwhile;
    1 if an offer was made."""
    doctors = await free.doctors(wish.criteria)
    for _ in range(_TRIES):
        slots = await free.of(doctors, wish.visit_minutes)
        slot = earliest(wish, slots, taken, clinic.today)
        if slot is None:
            return 0
        outcome = await offers.offer(session, wish, slot, clinic, minutes)
        if outcome is Offered.ENTRY_BUSY:
            return 0
        free.forget(slot.doctor_id)  # read again: the hold (or its taker) is there now
        if outcome is Offered.OFFERED:
            return 1
        taken.add(slot.key)
    return 0


async def _widened(session: AsyncSession, scope: Scope, free: FreeSlots, clinic: Clinic) -> Scope:
    """An entry in `scope` that fits a free slot is served with the older entries that may
    see its doctors: that slot may be one an older entry waits for (their rounds ran before it
    came free). The scope with those doctors; as it was when no entry listed fits a slot (the
    usual new entry, which then costs only its own look)."""
    if scope.everything:
        return scope
    listed = await waiting(session, Scope(scope.ids, listed=True), clinic.today)
    seen: set[uuid.UUID] = set()
    for wish in listed:
        doctors = await free.doctors(wish.criteria)
        slots = await free.of(doctors, wish.visit_minutes)
        if earliest(wish, slots, set(), clinic.today) is not None:
            seen.update(doctors)
    if not seen - scope.ids:
        return scope
    return Scope(scope.ids | seen)


async def sweep(
    sessions: Sessions, clinic: Clinic, settings: Settings, *, everyone: bool = False
) -> int:
    """What time frees: expire entries whose dates have passed, hand back offers whose hold
    ran out, and serve those entries, the doctors whose holds ran out lately, or (`everyone`)
    every waiting entry. Answers the offers made."""
    async with unit_of_work(sessions) as session:
        await session.execute(_LOCK, {"key": _ROUND_LOCK})
        await offers.expire_entries(session, clinic.today)
        ids = await offers.expire_offers(session, clinic)
        # Holds that ran out since a few sweeps ago: serving a doctor again changes nothing
        # when nothing fits, so overlapping windows only cost a read.
        since = clinic.now - dt.timedelta(seconds=4 * settings.waitlist_sweep_seconds)
        ids |= await offers.doctors_of_expired_holds(session, since, clinic.now)
        scope = Scope(frozenset(ids), everything=everyone)
        return await serve(session, scope, clinic, settings.waitlist_offer_minutes)


async def sweep_forever(
    sessions: Sessions, settings: Settings, clinic_of: Callable[[], Clinic]
) -> None:
    """`sweep` every `WAITLIST_SWEEP_SECONDS`; everyone at start and on each new day."""
    served_day: dt.date | None = None
    while True:
        clinic = clinic_of()
        try:
            await sweep(sessions, clinic, settings, everyone=clinic.today != served_day)
            served_day = clinic.today
        except Exception:
            logger.warning("waitlist sweep failed; will try again", exc_info=True)
        await asyncio.sleep(settings.waitlist_sweep_seconds)


class WaitlistMatcher:
    """Runs `waitlist` outbox jobs for the dispatcher: a round for the job's aggregate (a
    doctor whose slots may have come free, or an entry that waits). Not a mirror: nothing
    leaves the service here; the offers' messages go out as webhook jobs."""

    target = jobs.WAITLIST

    def __init__(
        self, settings: Settings, sessionmaker: Sessions, clinic_of: Callable[[], Clinic]
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._clinic_of = clinic_of

    async def deliver(self, job: ClaimedJob) -> dict[str, Any]:
        async with unit_of_work(self._sessionmaker) as session:
            made = await serve(
                session,
                Scope(frozenset({job.aggregate_id})),
                self._clinic_of(),
                self._settings.waitlist_offer_minutes,
            )
        return {"offered": made}

    async def lock(self, session: AsyncSession, job: ClaimedJob) -> None:
        return None

    async def record(
        self,
        session: AsyncSession,
        job: ClaimedJob,
        status: str,
        error: str | None,
        result: dict[str, Any] | None,
    ) -> None:
        return None

    async def aclose(self) -> None:
        return None
