"""What each doctor-day adds to the week, remembered under the version that describes it.

`doctor_days.version` changes with every change to a doctor's appointments, leaves or date
override on that date and with the clinic's holidays (triggers, migrations 0004 and 0005),
so what was read at one version stays exact for as long as that version is current. An
availability read first fetches the versions of its days (one small statement); when every
day is remembered at its current version it skips reading and decoding them. The days hold
nothing time-dependent: the engine applies the current schedule and clock to them. Per
process, least recently used first out.

Whole answers are remembered too (`answer`), under a stamp that names everything an answer
depends on: the doctor, the range, the visit length, the schedule version, every day's version
and the clinic's date. A caller stamps only ranges that start after the minimum notice ends,
whose slots no longer depend on the time of day (see `availability_service`), except through
the holds they hold: such an answer is true only until the first of them expires.

Each day's JSON is remembered as well (`rendered`), under the day's version and a context
naming the rest of what it depends on (the schedule version, the visit length, the clinic's
date), for days past the minimum notice that hold no hold. A range that is not remembered
whole (a clinic group asks for far more ranges than fit) is then put together from its days'
JSON, without running the engine or encoding again. The search remembers each doctor-day's
offered slots the same way (`offered`): it merges slots across doctors, so it needs them as
times, not as JSON. They are kept as (start, end) pairs of times, plain values the collector
leaves alone, as the keys are.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TypeVar

from app.services.scheduling.engine import Moment
from app.services.scheduling.queries import DoctorCalendar
from app.services.scheduling.schedule import NO_FACTS, DayFacts

# The keys and entries are plain tuples, typed field by field below, never NamedTuples or
# dataclasses: the garbage collector stops walking a tuple only when it is exactly a tuple
# holding untracked values (CPython never untracks a subclass's instance), and a clinic
# group's cache holds hundreds of thousands of them (BENCHMARKS.md, Scale). For the same
# reason a doctor's id is held as its integer, never as the UUID object.

# A doctor-day at one version: the doctor's id as its integer, the date, the day's version.
DayKey = tuple[int, dt.date, int]
# What a day's JSON or offered slots depend on besides the day's version (`day_context`).
DayContext = tuple[int, int | None, dt.date]
# A day's JSON or offered slots: the doctor-day at its version, and the context.
ViewKey = tuple[int, dt.date, int, DayContext]
# Everything a whole answer depends on (`answer_stamp`).
AnswerStamp = tuple[int, dt.date, dt.date, int | None, int, dt.date, tuple[int, ...]]
# A remembered answer: its JSON, the days it covers, and the instant it stops being true
# (when a hold in it expires; None: for as long as its stamp is current).
_Answer = tuple[bytes, int, dt.datetime | None]
# A day's offered slots as (start, end) pairs.
Offered = tuple[tuple[dt.time, dt.time], ...]

_View = TypeVar("_View", bytes, Offered)

# Answers are bounded by the days they cover, this many times the days remembered: a day of
# an answer (its slots and their JSON) weighs about what a remembered day does.
ANSWER_DAYS_PER_DAY = 5


def may_remember(day: dt.date, moment: Moment, facts: DayFacts) -> bool:
    """Whether what the engine works out for `day` (its JSON, its offered slots) may be
    remembered under the day's version and context: the day is past the date the notice
    reaches (so it no longer depends on the time of day), and no hold counts in it (a hold
    stops counting at its expiry, which moves no version). `moment`: the doctor's notice."""
    return day > moment.earliest_date and not facts.holding(moment.now)


def day_context(read: DoctorCalendar, visit_minutes: int | None, today: dt.date) -> DayContext:
    """What a day's JSON past the notice depends on besides the day's version: the doctor's
    schedule version in `read`, the visit's length (None: the slot length), the clinic's date."""
    return (read.schedule_version, visit_minutes, today)


def answer_stamp(
    read: DoctorCalendar, span: Sequence[dt.date], visit_minutes: int | None, today: dt.date
) -> AnswerStamp:
    """Everything a whole answer for `span` past the notice depends on: the doctor, the range,
    the visit's length, the clinic's date, and the schedule's and every day's version in
    `read`."""
    days = tuple(read.day_versions.get(day, 0) for day in span)
    doctor = read.doctor_id.int
    return (doctor, span[0], span[-1], visit_minutes, read.schedule_version, today, days)


class DayCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._days: OrderedDict[DayKey, DayFacts] = OrderedDict()
        self._answers: OrderedDict[AnswerStamp, _Answer] = OrderedDict()
        self._answer_days = 0
        self._answer_capacity = capacity * ANSWER_DAYS_PER_DAY
        self._rendered: OrderedDict[ViewKey, bytes] = OrderedDict()
        self._offered: OrderedDict[ViewKey, Offered] = OrderedDict()

    def answer(self, stamp: AnswerStamp, now: dt.datetime) -> bytes | None:
        """The answer remembered under `stamp` and still true at `now`, or None."""
        found = self._answers.get(stamp)
        if found is None:
            return None
        answer, days, until = found
        if until is not None and now >= until:
            del self._answers[stamp]
            self._answer_days -= days
            return None
        self._answers.move_to_end(stamp)
        return answer

    def remember_answer(
        self, stamp: AnswerStamp, answer: bytes, days: int, until: dt.datetime | None = None
    ) -> None:
        """Remember an answer covering `days` days, true until `until` (when a hold in it
        expires) or for as long as its stamp is current."""
        if days > self._answer_capacity or stamp in self._answers:
            return
        self._answers[stamp] = (answer, days, until)
        self._answer_days += days
        while self._answer_days > self._answer_capacity:
            _, (_, evicted, _) = self._answers.popitem(last=False)
            self._answer_days -= evicted

    def lookup(
        self, doctor_id: uuid.UUID, days: Sequence[dt.date], versions: Mapping[dt.date, int]
    ) -> dict[dt.date, DayFacts] | None:
        """The facts of all of `days`, or None if any is not remembered at its current
        version."""
        found: dict[dt.date, DayFacts] = {}
        entries = self._days
        doctor = doctor_id.int
        for day in days:
            key: DayKey = (doctor, day, versions.get(day, 0))
            facts = entries.get(key)
            if facts is None:
                return None
            entries.move_to_end(key)
            found[day] = facts
        return found

    def remember(
        self,
        doctor_id: uuid.UUID,
        days: Sequence[dt.date],
        versions: Mapping[dt.date, int],
        facts: Mapping[dt.date, DayFacts],
    ) -> None:
        """Remember `days` as read together with `versions` (one statement, one snapshot)."""
        if self.capacity <= 0:
            return
        entries = self._days
        doctor = doctor_id.int
        for day in days:
            key: DayKey = (doctor, day, versions.get(day, 0))
            entries[key] = facts.get(day, NO_FACTS)
            entries.move_to_end(key)
        while len(entries) > self.capacity:
            entries.popitem(last=False)

    def rendered(
        self,
        doctor_id: uuid.UUID,
        days: Sequence[dt.date],
        versions: Mapping[dt.date, int],
        context: DayContext,
    ) -> dict[dt.date, bytes]:
        """The JSON remembered for each of `days` at its current version under `context`;
        days without one are left out."""
        found: dict[dt.date, bytes] = {}
        entries = self._rendered
        doctor = doctor_id.int
        for day in days:
            key: ViewKey = (doctor, day, versions.get(day, 0), context)
            body = entries.get(key)
            if body is not None:
                entries.move_to_end(key)
                found[day] = body
        return found

    def remember_rendered(
        self, doctor_id: uuid.UUID, day: dt.date, version: int, context: DayContext, body: bytes
    ) -> None:
        """Remember a day's JSON, true for as long as `version` and `context` are current."""
        self._remember_view(self._rendered, (doctor_id.int, day, version, context), body)

    def offered(
        self, doctor_id: uuid.UUID, day: dt.date, version: int, context: DayContext
    ) -> Offered | None:
        """The slots remembered as offered on `day` at `version` under `context`, or None."""
        key: ViewKey = (doctor_id.int, day, version, context)
        slots = self._offered.get(key)
        if slots is not None:
            self._offered.move_to_end(key)
        return slots

    def remember_offered(
        self,
        doctor_id: uuid.UUID,
        day: dt.date,
        version: int,
        context: DayContext,
        slots: Offered,
    ) -> None:
        """Remember a day's offered slots, true for as long as `version` and `context` are
        current (the same terms as a day's JSON)."""
        self._remember_view(self._offered, (doctor_id.int, day, version, context), slots)

    def _remember_view(
        self, entries: OrderedDict[ViewKey, _View], key: ViewKey, value: _View
    ) -> None:
        """Keep `value` under `key` among at most `capacity` entries, least recent out."""
        if self.capacity <= 0:
            return
        entries[key] = value
        if len(entries) > self.capacity:
            entries.popitem(last=False)
