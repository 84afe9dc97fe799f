"""A realistic clinic for the benchmark: 50 doctors, 120 days, about 70% of slots booked.

Doctors work real weeks (a lunch break, some a Saturday morning), offer visit types of several
lengths, and have booking rules (notice, horizon, some a buffer or a daily limit); some
bookings are longer visits. Every seeded booking is one the engine accepts.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import asyncpg

from app.models.enums import WEEKDAYS
from app.services.scheduling.engine import Moment, day_availability, grid
from app.services.scheduling.refusal import refusal
from app.services.scheduling.schedule import DayFacts, Rules, Schedule

SPECIALIZATIONS = [
    "Cardiology",
    "Dermatology",
    "ENT",
    "Neurology",
    "Orthopedics",
    "Pediatrics",
    "Gynecology",
    "Psychiatry",
    "Ophthalmology",
    "General",
]
LANGUAGES = ["English", "Hindi", "Tamil", "Telugu", "Kannada", "Marathi", "Bengali"]
SLOTS = [10, 15, 20, 30, 30, 45, 60]
VISIT_TYPES = [("Follow-up", 20), ("Consultation", 45), ("New patient", 60)]
LONG_VISIT_SHARE = 0.15


def _clock(secs: int) -> str:
    return f"{secs // 3600:02d}:{secs // 60 % 60:02d}"


def _week(rng: random.Random) -> dict[str, list[dict[str, str]]]:
    """Weekdays with a lunch break when the day spans it; a Saturday morning for some."""
    start = rng.choice([7, 8, 9, 10]) * 3600 + rng.choice([0, 1800])
    end = rng.choice([13, 15, 17, 18, 19]) * 3600
    day = [(start, 13 * 3600), (14 * 3600, end)] if end > 14 * 3600 else [(start, end)]
    working = rng.sample(WEEKDAYS[:5], rng.choice([4, 5, 5]))
    week = {d: [{"start": _clock(s), "end": _clock(e)} for s, e in day] for d in working}
    if rng.random() < 0.5:
        week["saturday"] = [{"start": "09:00", "end": "12:00"}]
    return week


def _summary(week: dict[str, list[dict[str, str]]]) -> tuple[list[str], dict[str, str]]:
    windows = [w for d in WEEKDAYS for w in week.get(d, [])]
    days = [d for d in WEEKDAYS if week.get(d)]
    return days, {"start": min(w["start"] for w in windows), "end": max(w["end"] for w in windows)}


@dataclass
class Seeded:
    doctor_ids: list[uuid.UUID] = field(default_factory=list)
    specializations: list[str] = field(default_factory=list)
    free_slots: list[tuple[uuid.UUID, dt.date, str]] = field(default_factory=list)
    # Doctors with no buffer and no daily limit: a booking there never takes a neighbour's slot.
    unconstrained: set[uuid.UUID] = field(default_factory=set)
    patients: int = 0
    appointments: int = 0
    leaves: int = 0


async def seed(
    dsn: str,
    today: dt.date,
    *,
    doctors: int = 50,
    # Reads ask about the first 60 days; the rest leaves the booking phase, which books free
    # slots of every day, and the agents' flows after it (first 90 days) enough of them.
    days: int = 240,
    booked_share: float = 0.7,
    rng_seed: int = 42,
    specialization_of: Callable[[int], str] | None = None,
    history_days: int = 0,
    history_share: float = 0.3,
) -> Seeded:
    """`history_days` before today get past visits (mostly completed, some no-shows and
    cancellations) on `history_share` of their slots: the years a clinic carries."""
    rng = random.Random(rng_seed)
    history_rows: list[tuple[object, ...]] = []
    out = Seeded()
    doctor_rows, leave_rows, appointment_rows = [], [], []
    patient_ids = [uuid.uuid4() for _ in range(3000)]
    patient_rows = [(pid, f"Patient {i}", f"+9190000{i:05d}") for i, pid in enumerate(patient_ids)]
    visit_types = [(uuid.uuid4(), name, minutes) for name, minutes in VISIT_TYPES]
    now = dt.datetime.combine(today, dt.time(0), tzinfo=dt.UTC)
    for n in range(doctors):
        doctor_id = uuid.uuid4()
        week = _week(rng)
        slot = rng.choice(SLOTS)
        offered = rng.sample(visit_types, rng.randint(1, 3))
        rules = Rules(
            min_notice_minutes=60,
            horizon_days=days,
            # The first doctor has neither, so the contended rounds always have one.
            buffer_minutes=rng.choice([0, 0, 5]) if n else 0,
            max_per_day=rng.choice([None, None, 40]) if n else None,
        )
        specialization = (
            specialization_of(n) if specialization_of else SPECIALIZATIONS[n % len(SPECIALIZATIONS)]
        )
        working_days, working_hours = _summary(week)
        doctor_rows.append(
            (
                doctor_id,
                uuid.UUID(int=0),
                f"Dr Bench {n:02d}",
                f"bench{n:02d}@clinic.example",
                specialization,
                rng.randint(1, 35),
                rng.sample(LANGUAGES, 2),
                "in_person",
                "Weekdays",
                json.dumps(week),
                json.dumps(working_days),
                json.dumps(working_hours),
                slot,
                True,
                [v[0] for v in offered],
                rules.min_notice_minutes,
                rules.horizon_days,
                rules.buffer_minutes,
                rules.max_per_day,
            )
        )
        out.doctor_ids.append(doctor_id)
        if not rules.buffer_minutes and rules.max_per_day is None:
            out.unconstrained.add(doctor_id)
        out.specializations.append(specialization)
        schedule = Schedule.from_weekly_hours(week, slot, True, rules)
        history_rows.extend(
            _history(
                rng, doctor_id, schedule, slot, today, history_days, history_share, patient_ids
            )
        )
        leave_days = set(rng.sample(range(1, days), 3))
        for offset in range(days):
            day = today + dt.timedelta(days=offset)
            windows = schedule.week[day.weekday()]
            if not windows:
                continue
            if offset in leave_days:
                leave_rows.append((uuid.uuid4(), doctor_id, day, "Conference"))
                continue
            busy: list[tuple[dt.date, dt.time, dt.time]] = []
            for begin in grid(windows, slot, slot).starts if offset else ():
                if rng.random() >= booked_share:
                    continue
                visit_type_id, minutes = None, slot
                if rng.random() < LONG_VISIT_SHARE:
                    visit_type_id, _, minutes = rng.choice(offered)
                start = dt.time(begin // 3600, begin // 60 % 60)
                facts = DayFacts(busy=tuple(busy))
                if refusal(schedule, day, start, facts, now, dt.UTC, minutes) is not None:
                    continue
                finish = begin + minutes * 60
                busy.append((day, start, dt.time(finish // 3600, finish // 60 % 60)))
                appointment_rows.append(
                    (uuid.uuid4(), doctor_id, rng.choice(patient_ids), *busy[-1], visit_type_id)
                )
            free = day_availability(
                schedule, day, DayFacts(busy=tuple(busy)), Moment.of(now, dt.UTC), dt.UTC
            )
            out.free_slots.extend(
                (doctor_id, day, _clock(s.start.hour * 3600 + s.start.minute * 60))
                for s in free.slots
            )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO visit_types (id, name, duration_minutes, is_active)"
            " VALUES ($1, $2, $3, true)",
            visit_types,
        )
        await conn.executemany(
            """
            INSERT INTO doctors (id, clinic_id, name, email, specialization, experience_years,
                                 languages, consultation_type, general_working_days_text,
                                 weekly_hours, working_days, working_hours, slot_duration_minutes,
                                 is_active, visit_type_ids, min_notice_minutes,
                                 booking_horizon_days, buffer_minutes, max_appointments_per_day)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13,
                    $14, $15, $16, $17, $18, $19)
            """,
            doctor_rows,
        )
        await conn.copy_records_to_table(
            "patients", records=patient_rows, columns=["id", "name", "mobile_number"]
        )
        await conn.copy_records_to_table(
            "doctor_leaves", records=leave_rows, columns=["id", "doctor_id", "date", "reason"]
        )
        await conn.execute(
            """
            INSERT INTO appointments (id, doctor_id, patient_id, date, start_time, end_time,
                                      visit_type_id, status, source, calendar_sync_status)
            SELECT id, doctor_id, patient_id, date, start_time, end_time, visit_type_id,
                   'BOOKED', 'AI_CALLING_AGENT', 'disabled'
              FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[], $5::time[], $6::time[],
                          $7::uuid[])
                AS t(id, doctor_id, patient_id, date, start_time, end_time, visit_type_id)
            """,
            *map(list, zip(*appointment_rows, strict=True)),
        )
        if history_rows:
            # The past is loaded without the triggers that keep day versions: nothing reads
            # the versions of days gone by, and a million row triggers would dominate the load.
            await conn.execute("SET session_replication_role = replica")
            await conn.copy_records_to_table(
                "appointments",
                records=history_rows,
                columns=[
                    "id",
                    "doctor_id",
                    "patient_id",
                    "date",
                    "start_time",
                    "end_time",
                    "status",
                    "source",
                    "calendar_sync_status",
                ],
            )
            await conn.execute("SET session_replication_role = DEFAULT")
        # The seeded appointments get no reminders, and no replan is owed for them: one in the
        # background (a dispatcher planning every seeded appointment) would be in every phase.
        await conn.execute("UPDATE reminder_policy SET planned_version = version")
        # A running clinic's tables have been through autovacuum; a freshly bulk-loaded one has
        # an empty visibility map, which would make every index-only scan visit the heap.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    rng.shuffle(out.free_slots)
    out.patients, out.appointments, out.leaves = (
        len(patient_rows),
        len(appointment_rows) + len(history_rows),
        len(leave_rows),
    )
    return out


def _history(
    rng: random.Random,
    doctor_id: uuid.UUID,
    schedule: Schedule,
    slot: int,
    today: dt.date,
    days: int,
    share: float,
    patient_ids: list[uuid.UUID],
) -> Iterator[tuple[object, ...]]:
    """Past visits on the grid, one slot long, so they never overlap."""
    for offset in range(1, days + 1):
        day = today - dt.timedelta(days=offset)
        windows = schedule.week[day.weekday()]
        if not windows:
            continue
        for begin in grid(windows, slot, slot).starts:
            if rng.random() >= share:
                continue
            finish = begin + slot * 60
            roll = rng.random()
            status = "COMPLETED" if roll < 0.9 else "NO_SHOW" if roll < 0.95 else "CANCELLED"
            yield (
                uuid.uuid4(),
                doctor_id,
                rng.choice(patient_ids),
                day,
                dt.time(begin // 3600, begin // 60 % 60),
                dt.time(finish // 3600, finish // 60 % 60),
                status,
                "AI_CALLING_AGENT",
                "disabled",
            )
