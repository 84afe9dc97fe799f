"""The matcher's reads: the waiting entries a round serves (oldest first) as `Wish`es, the
doctors a wish may see, and each doctor's free slots, read once per round."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.enums import WEEKDAYS
from app.schemas.waitlist import stored_windows
from app.services.context import Clinic
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling.engine import availability
from app.services.scheduling.queries import DoctorCalendar, load_doctor_calendar
from app.services.waitlist.wishes import FreeSlot, SlotKey, Wish

# The shortest visit a clinic has (visit types and slots are 5 to 480 minutes).
SHORTEST_VISIT = 5

# Whether entry `e` may see doctor `d` (SPEC: that doctor; or the specialization, ignoring
# case, the language, the consultation type, offering the visit type). The same filters as
# `DoctorFilters.where` gives for one entry, turned round to find a doctor's entries.
_SEES_DOCTOR = """
    (e.doctor_id = d.id OR (e.doctor_id IS NULL AND d.is_active
        AND (e.specialization IS NULL OR lower(d.specialization) = lower(e.specialization))
        AND (e.language IS NULL OR EXISTS (
                SELECT 1 FROM unnest(d.languages) AS spoken(language)
                 WHERE lower(spoken.language) = lower(e.language)))
        AND (e.consultation_type IS NULL
             OR lower(d.consultation_type) = lower(e.consultation_type))
        AND (e.visit_type_id IS NULL OR e.visit_type_id = ANY(d.visit_type_ids))))"""

# Whom a scope serves (`Scope`): the waiting entries listed and those that may see a doctor
# listed, or every waiting entry; or (`listed`) the entries listed alone, found by their ids.
_IN_SCOPE = f"""
    (:everything OR e.id = ANY(CAST(:ids AS uuid[])) OR EXISTS (
         SELECT 1 FROM doctors d WHERE d.id = ANY(CAST(:ids AS uuid[])) AND {_SEES_DOCTOR}))"""
_LISTED = "e.id = ANY(CAST(:ids AS uuid[]))"


# Entries read at a time by a round (`matcher.serve`): a literal, not a parameter, so the
# plan walks the waiting entries' index in order and stops there (a generic plan of a LIMIT
# parameter sorted the whole list).
PAGE = 50


def _waiting_sql(scope_sql: str, limit: str) -> TextClause:
    return text(
        f"""
    SELECT e.id, e.created_at, e.patient_id, e.doctor_id, e.specialization, e.language,
           e.consultation_type, e.visit_type_id, e.start_date, e.end_date, e.weekdays, e.times,
           e.correlation_id,
           a.date AS before_date, a.start_time AS before_time,
           CAST(extract(epoch FROM a.end_time - a.start_time) / 60 AS integer)
               AS appointment_minutes,
           vt.duration_minutes AS type_minutes, coalesce(vt.is_active, true) AS type_active
      FROM waitlist_entries e
      LEFT JOIN appointments a ON a.id = e.appointment_id
      LEFT JOIN visit_types vt ON vt.id = e.visit_type_id
     WHERE e.status = 'waiting' AND e.end_date >= :today AND {scope_sql}
       AND (e.created_at, e.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid))
     ORDER BY e.created_at, e.id
     {limit}
    """
    )


# Two statements, not one with a flag: a generic plan of "listed or in scope" walked every
# waiting entry to find the few listed.
_WAITING = _waiting_sql(_IN_SCOPE, f"LIMIT {PAGE}")
_WAITING_LISTED = _waiting_sql(_LISTED, "")
# Of everyone waiting, not just a scope's: one probe of an index, whatever the list's length.
_LAST_DATE = text("SELECT max(end_date) FROM waitlist_entries WHERE status = 'waiting'")
_DOCTORS_AMONG = text("SELECT id FROM doctors WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id")
# Before every entry (the first page's "after").
START = (dt.datetime.min.replace(tzinfo=dt.UTC), uuid.UUID(int=0))
_OFFERED_BEFORE = text(
    "SELECT entry_id, doctor_id, date, start_time FROM waitlist_offers"
    " WHERE entry_id = ANY(CAST(:ids AS uuid[]))"
)


@dataclass(frozen=True, slots=True)
class Scope:
    """Whom a round serves: the waiting entries among `ids`, and those that may see a doctor
    among `ids` (a job's aggregate is a doctor or an entry); or every waiting entry."""

    ids: frozenset[uuid.UUID] = frozenset()
    everything: bool = False
    listed: bool = False  # the entries listed only, not those that may see a doctor listed

    def values(self, today: dt.date) -> dict[str, object]:
        chosen: dict[str, object] = {"today": today, "ids": list(self.ids)}
        return chosen if self.listed else {**chosen, "everything": self.everything}


async def last_date(session: AsyncSession) -> dt.date | None:
    """The last date any waiting entry would take (a round reads the doctors' days up to it;
    its entries want none later); None: nobody waits."""
    found: dt.date | None = await session.scalar(_LAST_DATE)
    return found


async def doctors_among(session: AsyncSession, ids: frozenset[uuid.UUID]) -> list[uuid.UUID]:
    """The ids that are doctors' (a scope's ids are doctors or entries)."""
    return [row.id for row in await session.execute(_DOCTORS_AMONG, {"ids": list(ids)})]


async def waiting(
    session: AsyncSession,
    scope: Scope,
    today: dt.date,
    *,
    after: tuple[dt.datetime, uuid.UUID] = START,
) -> list[Wish]:
    """The waiting entries in `scope`, oldest first: the `PAGE` after `after` (an entry's
    `created_at` and id), or every entry listed; with the slots offered to each before. An
    entry whose visit type is no longer active matches nothing, and is left out."""
    values = {**scope.values(today), "after_at": after[0], "after_id": after[1]}
    statement = _WAITING_LISTED if scope.listed else _WAITING
    rows = (await session.execute(statement, values)).all()
    ids = [row.id for row in rows]
    offered: dict[uuid.UUID, set[SlotKey]] = {entry_id: set() for entry_id in ids}
    if ids:
        for pair in await session.execute(_OFFERED_BEFORE, {"ids": ids}):
            offered[pair.entry_id].add((pair.doctor_id, pair.date, pair.start_time))
    wishes: list[Wish] = []
    for row in rows:
        if not row.type_active:
            continue
        moving = row.before_date is not None
        windows = stored_windows(row.times)
        wishes.append(
            Wish(
                entry_id=row.id,
                created_at=row.created_at,
                patient_id=row.patient_id,
                criteria=DoctorFilters(
                    specialization=row.specialization,
                    language=row.language,
                    consultation_type=row.consultation_type,
                    is_active=True,
                    visit_type_id=row.visit_type_id,
                    doctor_id=row.doctor_id,
                ),
                visit_type_id=row.visit_type_id,
                visit_minutes=row.appointment_minutes if moving else row.type_minutes,
                first=row.start_date,
                last=row.end_date,
                weekdays=None
                if row.weekdays is None
                else frozenset(WEEKDAYS.index(day) for day in row.weekdays),
                times=None if windows is None else tuple(windows),
                before=(row.before_date, row.before_time) if moving else None,
                offered=frozenset(offered[row.id]),
                correlation_id=row.correlation_id,
            )
        )
    return wishes


@dataclass
class FreeSlots:
    """Each doctor's free slots from `today` to `last` (as availability offers them), read
    once per round and read again once the round has held one of them (`forget`)."""

    session: AsyncSession
    clinic: Clinic
    last: dt.date
    _doctors: dict[DoctorFilters, list[uuid.UUID]] = field(default_factory=dict)
    _calendars: dict[uuid.UUID, DoctorCalendar] = field(default_factory=dict)
    _slots: dict[tuple[uuid.UUID, int | None], list[FreeSlot]] = field(default_factory=dict)

    async def doctors(self, criteria: DoctorFilters) -> list[uuid.UUID]:
        found = self._doctors.get(criteria)
        if found is None:
            where, params = criteria.where("d")
            rows = await self.session.execute(
                text(f"SELECT d.id FROM doctors d WHERE {where} ORDER BY d.id"), params
            )
            found = self._doctors[criteria] = [row.id for row in rows]
        return found

    async def of(
        self, doctor_ids: Collection[uuid.UUID], minutes: int | None
    ) -> dict[uuid.UUID, list[FreeSlot]]:
        return {doctor_id: await self._of(doctor_id, minutes) for doctor_id in doctor_ids}

    async def _of(self, doctor_id: uuid.UUID, minutes: int | None) -> list[FreeSlot]:
        slots = self._slots.get((doctor_id, minutes))
        if slots is not None:
            return slots
        calendar = self._calendars.get(doctor_id)
        today = self.clinic.today
        if calendar is None:
            calendar = await load_doctor_calendar(self.session, doctor_id, today, self.last)
            self._calendars[doctor_id] = calendar
        days = availability(
            calendar.schedule,
            today,
            self.last,
            calendar.facts,
            self.clinic.now,
            self.clinic.tz,
            minutes,
        )
        slots = [(day.date, slot.start, slot.end) for day in days for slot in day.slots]
        self._slots[(doctor_id, minutes)] = slots
        return slots

    async def any_free(self, doctor_ids: Collection[uuid.UUID]) -> bool:
        """Whether any of these doctors has a free slot from today to `last`, of any length
        (the shortest visit fits wherever a longer one does, on the same grid)."""
        for doctor_id in doctor_ids:
            if await self._of(doctor_id, SHORTEST_VISIT):
                return True
        return False

    def forget(self, doctor_id: uuid.UUID) -> None:
        self._calendars.pop(doctor_id, None)
        for key in [key for key in self._slots if key[0] == doctor_id]:
            del self._slots[key]
