"""A realistic clinic for the benchmark: 50 doctors, 60 days, about 70% of slots booked."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass, field

import asyncpg

from app.services.scheduling.engine import WEEKDAY_INDEX, Schedule, grid

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
WEEKDAYS = list(WEEKDAY_INDEX)


@dataclass
class Seeded:
    doctor_ids: list[uuid.UUID] = field(default_factory=list)
    specializations: list[str] = field(default_factory=list)
    free_slots: list[tuple[uuid.UUID, dt.date, str]] = field(default_factory=list)
    patients: int = 0
    appointments: int = 0
    leaves: int = 0


async def seed(
    dsn: str,
    today: dt.date,
    *,
    doctors: int = 50,
    days: int = 60,
    booked_share: float = 0.7,
    rng_seed: int = 42,
) -> Seeded:
    rng = random.Random(rng_seed)
    out = Seeded()
    doctor_rows, leave_rows, appointment_rows = [], [], []
    patient_ids = [uuid.uuid4() for _ in range(3000)]
    patient_rows = [(pid, f"Patient {i}", f"+9190000{i:05d}") for i, pid in enumerate(patient_ids)]
    for n in range(doctors):
        doctor_id = uuid.uuid4()
        start = dt.time(rng.choice([7, 8, 9, 10]), rng.choice([0, 30]))
        end = dt.time(rng.choice([13, 15, 17, 18, 19]), 0)
        slot = rng.choice(SLOTS)
        working = sorted(rng.sample(WEEKDAYS[:6], rng.choice([4, 5, 5, 6])), key=WEEKDAYS.index)
        specialization = SPECIALIZATIONS[n % len(SPECIALIZATIONS)]
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
                working,
                {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")},
                slot,
                True,
            )
        )
        out.doctor_ids.append(doctor_id)
        out.specializations.append(specialization)
        schedule = Schedule(frozenset(WEEKDAY_INDEX[d] for d in working), start, end, slot, True)
        leave_days = set(rng.sample(range(1, days), 3))
        for offset in range(days):
            day = today + dt.timedelta(days=offset)
            if day.weekday() not in schedule.working_days:
                continue
            if offset in leave_days:
                leave_rows.append((uuid.uuid4(), doctor_id, day, "Conference"))
                continue
            for begin, finish in grid(schedule):
                start_s = f"{begin // 3600:02d}:{begin // 60 % 60:02d}"
                if offset == 0 or rng.random() >= booked_share:
                    out.free_slots.append((doctor_id, day, start_s))
                    continue
                appointment_rows.append(
                    (
                        uuid.uuid4(),
                        doctor_id,
                        rng.choice(patient_ids),
                        day,
                        dt.time(begin // 3600, begin // 60 % 60),
                        dt.time(finish // 3600, finish // 60 % 60),
                    )
                )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            """
            INSERT INTO doctors (id, clinic_id, name, email, specialization, experience_years,
                                 languages, consultation_type, general_working_days_text,
                                 working_days, working_hours, slot_duration_minutes, is_active)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13)
            """,
            [(*row[:9], json.dumps(row[9]), json.dumps(row[10]), *row[11:]) for row in doctor_rows],
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
                                      status, source, calendar_sync_status)
            SELECT id, doctor_id, patient_id, date, start_time, end_time,
                   'BOOKED', 'AI_CALLING_AGENT', 'disabled'
              FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::date[], $5::time[], $6::time[])
                AS t(id, doctor_id, patient_id, date, start_time, end_time)
            """,
            *map(list, zip(*appointment_rows, strict=True)),
        )
        # A running clinic's tables have been through autovacuum; a freshly bulk-loaded one has
        # an empty visibility map, which would make every index-only scan visit the heap.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    rng.shuffle(out.free_slots)
    out.patients, out.appointments, out.leaves = (
        len(patient_rows),
        len(appointment_rows),
        len(leave_rows),
    )
    return out
