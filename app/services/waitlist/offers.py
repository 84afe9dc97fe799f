"""Offers: a free slot held for a waiting entry, and the ways an offer ends.

An offer is a hold (`hold_service.keep`, decided and written as any hold is, so a slot is
never held twice) plus the entry's move to `offered` and a `waitlist_offers` row, written
together in a SAVEPOINT with the `waitlist.offered` message: an entry someone else is
changing at that moment (locked) is skipped, and a slot taken meanwhile is refused, leaving
nothing behind. The hold is made before the entry is locked, as every change that takes both
takes them (a cancel locks its day, then the entries of its appointment), so the two never
wait on each other in a cycle.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import ServiceError, SlotUnavailable
from app.models import WaitlistEntry
from app.models.waitlist import OfferOutcome, WaitlistStatus
from app.services import hold_service
from app.services.booking.decide import Wanted
from app.services.context import Caller, Clinic
from app.services.waitlist import entries
from app.services.waitlist.wishes import Offerable, Wish
from app.services.webhooks.events import WebhookEvent

logger = logging.getLogger("app.waitlist")

# The actor of the holds the matcher makes (an entry's call id is their correlation id).
MATCHER = "waitlist"


class Offered(enum.Enum):
    OFFERED = "held for the entry"
    SLOT_TAKEN = "the slot was taken meanwhile"
    ENTRY_BUSY = "the entry is being changed, or is no longer waiting"


class _EntryBusy(Exception):
    pass


_TAKE = text(
    """
    UPDATE waitlist_entries SET status = 'offered', hold_id = :hold_id, updated_at = now()
     WHERE id = (SELECT id FROM waitlist_entries WHERE id = :id AND status = 'waiting'
                 FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)
_RECORD = text(
    """
    INSERT INTO waitlist_offers (entry_id, hold_id, doctor_id, date, start_time, end_time)
    VALUES (:entry_id, :hold_id, :doctor_id, :date, :start_time, :end_time)
    """
)


async def offer(
    session: AsyncSession, wish: Wish, slot: Offerable, clinic: Clinic, minutes: int
) -> Offered:
    """Hold `slot` for `wish`'s entry for `minutes` and tell the receivers, or nothing."""
    wanted = Wanted(slot.doctor_id, slot.date, slot.start, wish.visit_type_id)
    caller = Caller(MATCHER, wish.correlation_id)
    try:
        async with session.begin_nested():
            # The SAVEPOINT now: the hold's statements go to the driver, which SQLAlchemy
            # does not see, and it would otherwise set the SAVEPOINT after them.
            await session.connection()
            expires_at = clinic.now + dt.timedelta(minutes=minutes)
            hold = await hold_service.keep(session, wanted, expires_at, caller, clinic)
            taken = await session.execute(_TAKE, {"id": wish.entry_id, "hold_id": hold.id})
            if taken.first() is None:
                raise _EntryBusy
            values = {
                "entry_id": wish.entry_id,
                "hold_id": hold.id,
                "doctor_id": hold.doctor_id,
                "date": hold.date,
                "start_time": hold.start_time,
                "end_time": hold.end_time,
            }
            await session.execute(_RECORD, values)
            await entries.send(
                session, WebhookEvent.WAITLIST_OFFERED, wish.entry_id, hold.id, clinic
            )
    except SlotUnavailable:
        return Offered.SLOT_TAKEN
    except _EntryBusy:
        return Offered.ENTRY_BUSY
    except ServiceError:
        # The slot's rules refuse this entry (a visit type no longer offered): it is passed
        # over, and the others are still served.
        logger.warning("waitlist entry passed over", extra={"entry_id": str(wish.entry_id)})
        return Offered.ENTRY_BUSY
    return Offered.OFFERED


_END_OFFER = text(
    "UPDATE waitlist_offers SET outcome = :outcome, answered_at = now()"
    " WHERE entry_id = :entry_id AND outcome = 'open'"
)


async def end(
    session: AsyncSession,
    entry: WaitlistEntry,
    outcome: OfferOutcome,
    status: WaitlistStatus,
) -> None:
    """The entry's open offer ends with `outcome`; the entry (locked by the caller) becomes
    `status`, without a hold."""
    await session.execute(_END_OFFER, {"entry_id": entry.id, "outcome": str(outcome)})
    entry.status = status
    entry.hold_id = None
    await session.flush()


# Offers whose hold has run out: back to waiting (the hold stays as it is, reading `expired`;
# the slot was offered, so it is never offered to this entry again). So too an offer whose
# hold someone released through `DELETE /holds/{id}` (its id is the capability).
_EXPIRE_OFFERS = text(
    """
    WITH due AS (
        SELECT e.id, e.hold_id, h.doctor_id
          FROM waitlist_entries e JOIN holds h ON h.id = e.hold_id
         WHERE e.status = 'offered'
           AND (h.status = 'released' OR (h.status = 'active' AND h.expires_at <= :now))
         ORDER BY e.id
           FOR UPDATE OF e SKIP LOCKED
    ), ended AS (
        UPDATE waitlist_offers o SET outcome = 'expired', answered_at = now()
          FROM due WHERE o.entry_id = due.id AND o.outcome = 'open'
    )
    UPDATE waitlist_entries e SET status = 'waiting', hold_id = NULL, updated_at = now()
      FROM due WHERE e.id = due.id
    RETURNING e.id, due.hold_id, due.doctor_id
    """
)


# An offer booked straight through its hold (`POST /appointments/` with its `hold_id`): the
# entry is booked.
_BOOKED_THROUGH_HOLD = text(
    """
    WITH due AS (
        SELECT e.id, h.appointment_id
          FROM waitlist_entries e JOIN holds h ON h.id = e.hold_id
         WHERE e.status = 'offered' AND h.status = 'booked'
         ORDER BY e.id
           FOR UPDATE OF e SKIP LOCKED
    ), ended AS (
        UPDATE waitlist_offers o SET outcome = 'accepted', answered_at = now()
          FROM due WHERE o.entry_id = due.id AND o.outcome = 'open'
    )
    UPDATE waitlist_entries e
       SET status = 'booked', hold_id = NULL, booked_appointment_id = due.appointment_id,
           updated_at = now()
      FROM due WHERE e.id = due.id
    """
)


async def expire_offers(session: AsyncSession, clinic: Clinic) -> set[uuid.UUID]:
    """Hand back every offer whose hold expired by `clinic.now`, each with its
    `waitlist.offer_expired`; the entries and the holds' doctors, to serve again. (An offer
    booked straight through its hold makes its entry booked.)"""
    await session.execute(_BOOKED_THROUGH_HOLD)
    expired = (await session.execute(_EXPIRE_OFFERS, {"now": clinic.now})).all()
    for row in expired:
        await entries.send(
            session, WebhookEvent.WAITLIST_OFFER_EXPIRED, row.id, row.hold_id, clinic
        )
    return {row.id for row in expired} | {row.doctor_id for row in expired}


# Entries whose dates have passed: expired, their offers withdrawn and holds let go.
_EXPIRE_ENTRIES = text(
    """
    WITH ended AS (
        SELECT id, hold_id FROM waitlist_entries
         WHERE status IN ('waiting', 'offered') AND end_date < :today
         ORDER BY id
           FOR UPDATE SKIP LOCKED
    ), withdrawn AS (
        UPDATE waitlist_offers o SET outcome = 'withdrawn', answered_at = now()
          FROM ended WHERE o.entry_id = ended.id AND o.outcome = 'open'
    ), released AS (
        UPDATE holds h SET status = 'released', updated_at = now()
          FROM ended WHERE h.id = ended.hold_id AND h.status = 'active'
    )
    UPDATE waitlist_entries e SET status = 'expired', hold_id = NULL, updated_at = now()
      FROM ended WHERE e.id = ended.id
    """
)


async def expire_entries(session: AsyncSession, today: dt.date) -> None:
    await session.execute(_EXPIRE_ENTRIES, {"today": today})


_RECENTLY_EXPIRED = text(
    "SELECT DISTINCT doctor_id FROM holds"
    " WHERE status = 'active' AND expires_at > :since AND expires_at <= :now"
)


async def doctors_of_expired_holds(
    session: AsyncSession, since: dt.datetime, now: dt.datetime
) -> set[uuid.UUID]:
    """Doctors with a hold that ran out between `since` and `now` (its slot came free)."""
    rows = await session.execute(_RECENTLY_EXPIRED, {"since": since, "now": now})
    return {row.doctor_id for row in rows}
