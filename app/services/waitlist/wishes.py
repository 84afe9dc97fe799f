"""What a waiting entry asks for (`Wish`), and the earliest free slot that fits it: pure, no
session and no clock (the free slots and "now" are given)."""

from __future__ import annotations

import datetime as dt
import uuid
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.services.doctor_filters import DoctorFilters

# A free slot of one doctor: (date, start, end), and the key a slot is offered under.
FreeSlot = tuple[dt.date, dt.time, dt.time]
SlotKey = tuple[uuid.UUID, dt.date, dt.time]


@dataclass(frozen=True, slots=True)
class Offerable:
    doctor_id: uuid.UUID
    date: dt.date
    start: dt.time
    end: dt.time

    @property
    def key(self) -> SlotKey:
        return (self.doctor_id, self.date, self.start)


@dataclass(frozen=True, slots=True)
class Wish:
    """A waiting entry as the matcher reads it."""

    entry_id: uuid.UUID
    created_at: dt.datetime
    patient_id: uuid.UUID
    criteria: DoctorFilters  # the doctors it may see (active ones)
    visit_type_id: uuid.UUID | None
    visit_minutes: int | None  # an appointment to move keeps its length; else the type's
    first: dt.date
    last: dt.date
    weekdays: frozenset[int] | None  # `date.weekday()` numbers; None: any day
    times: tuple[tuple[dt.time, dt.time], ...] | None  # None: any time
    before: tuple[dt.date, dt.time] | None  # the appointment to move starts then
    offered: frozenset[SlotKey]  # never offered again
    correlation_id: str | None

    def fits(self, doctor_id: uuid.UUID, slot: FreeSlot) -> bool:
        day, start, end = slot
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        if self.times is not None and not any(s <= start and end <= e for s, e in self.times):
            return False
        if self.before is not None and (day, start) >= self.before:
            return False
        return (doctor_id, day, start) not in self.offered


def earliest(
    wish: Wish,
    free: Mapping[uuid.UUID, Sequence[FreeSlot]],
    taken: set[SlotKey],
    today: dt.date,
) -> Offerable | None:
    """The earliest slot of `free` (each doctor's, sorted) that fits `wish`, from today on,
    that `taken` (offered in this round already) does not hold; ties by doctor id."""
    first = max(wish.first, today)
    best: Offerable | None = None
    for doctor_id in sorted(free):
        slots = free[doctor_id]
        at = bisect_left(slots, (first, dt.time.min, dt.time.min))
        for slot in slots[at:]:
            day, start, end = slot
            if day > wish.last or (best is not None and (day, start) >= (best.date, best.start)):
                break
            if (doctor_id, day, start) not in taken and wish.fits(doctor_id, slot):
                best = Offerable(doctor_id, day, start, end)
                break
    return best
