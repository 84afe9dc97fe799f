"""Real races: many clients, two service processes, separate connections, one database."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY
from tests.factories import booking_payload, next_weekday, patient_payload
from tests.servers import service_processes

OVERLAPS = text(
    """
    SELECT count(*) FROM appointments a JOIN appointments b
      ON a.doctor_id = b.doctor_id AND a.id < b.id AND a.date = b.date
     AND a.start_time < b.end_time AND b.start_time < a.end_time
     WHERE a.status IN ('BOOKED', 'RESCHEDULED') AND b.status IN ('BOOKED', 'RESCHEDULED')
    """
)


# Pairs of active appointments of one doctor closer than the doctor's buffer (0: overlapping).
TOO_CLOSE = text(
    """
    SELECT count(*) FROM appointments a
      JOIN appointments b ON a.doctor_id = b.doctor_id AND a.id < b.id AND a.date = b.date
      JOIN doctors d ON d.id = a.doctor_id
     WHERE a.status IN ('BOOKED', 'RESCHEDULED') AND b.status IN ('BOOKED', 'RESCHEDULED')
       AND a.start_time < b.end_time + make_interval(mins => d.buffer_minutes)
       AND b.start_time < a.end_time + make_interval(mins => d.buffer_minutes)
    """
)
OVER_THE_LIMIT = text(
    """
    SELECT count(*) FROM (
        SELECT a.doctor_id, a.date FROM appointments a JOIN doctors d ON d.id = a.doctor_id
         WHERE a.status IN ('BOOKED', 'RESCHEDULED')
         GROUP BY a.doctor_id, a.date, d.max_appointments_per_day
        HAVING count(*) > d.max_appointments_per_day) over_limit
    """
)
# What takes a doctor's time: active appointments and active, unexpired holds.
_SPANS = """
    WITH spans AS (
        SELECT id, doctor_id, date, start_time, end_time FROM appointments
         WHERE status IN ('BOOKED', 'RESCHEDULED')
        UNION ALL
        SELECT id, doctor_id, date, start_time, end_time FROM holds
         WHERE status = 'active' AND expires_at > now()
    )
"""
SPANS_TOO_CLOSE = text(
    _SPANS
    + """
    SELECT count(*) FROM spans a
      JOIN spans b ON a.doctor_id = b.doctor_id AND a.id < b.id AND a.date = b.date
      JOIN doctors d ON d.id = a.doctor_id
     WHERE a.start_time < b.end_time + make_interval(mins => d.buffer_minutes)
       AND b.start_time < a.end_time + make_interval(mins => d.buffer_minutes)
    """
)
SPANS_OVER_THE_LIMIT = text(
    _SPANS
    + """
    SELECT count(*) FROM (
        SELECT s.doctor_id, s.date FROM spans s JOIN doctors d ON d.id = s.doctor_id
         GROUP BY s.doctor_id, s.date, d.max_appointments_per_day
        HAVING count(*) > d.max_appointments_per_day) over_limit
    """
)
LUNCH_BREAK = [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "16:00"}]


@pytest.fixture(scope="module")
def two_services(database_url: str) -> Iterator[list[str]]:
    with service_processes(database_url, 2, API_KEY) as urls:
        yield urls


def _clients(urls: list[str]) -> list[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    return [
        httpx.AsyncClient(base_url=u, headers={"X-API-Key": API_KEY}, timeout=60, limits=limits)
        for u in urls
    ]


async def _wave(*operations: Coroutine[Any, Any, None]) -> None:
    """Run a wave of operations to its end, then raise the first that failed. Not plain
    `gather`: a lane that fails an assertion would leave the wave's other requests running
    into the next test, or into the teardown's TRUNCATE (a deadlock)."""
    outcomes = await asyncio.gather(*operations, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _doctor(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    from tests.factories import doctor_payload

    response = await client.post("/api/v1/doctors/", json=doctor_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_sixty_clients_one_slot_exactly_one_wins(
    db: AsyncEngine, two_services: list[str]
) -> None:
    clients = _clients(two_services)
    try:
        doctor = await _doctor(clients[0])
        day = next_weekday(0)
        requests = [
            clients[i % 2].post(
                "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "10:00")
            )
            for i in range(60)
        ]
        responses = await asyncio.gather(*requests)
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: 1, 409: 59}, codes
        assert all(
            r.json()["code"] == "slot_unavailable" for r in responses if r.status_code == 409
        )
        async with db.connect() as conn:
            active = await conn.scalar(
                text("SELECT count(*) FROM appointments WHERE status IN ('BOOKED', 'RESCHEDULED')")
            )
        assert active == 1
    finally:
        for client in clients:
            await client.aclose()


async def test_sixty_holds_and_bookings_for_one_slot_leave_one_winner(
    db: AsyncEngine, two_services: list[str]
) -> None:
    """Holds alone, then holds and bookings mixed, each raced for one slot from two
    processes: exactly one request wins each slot."""
    clients = _clients(two_services)
    try:
        doctor = await _doctor(clients[0])
        day = next_weekday(1)
        body = {"doctor_id": doctor["id"], "date": day.isoformat(), "start_time": "10:00"}
        holds = await asyncio.gather(
            *[clients[i % 2].post("/api/v1/holds/", json=body) for i in range(60)]
        )
        assert Counter(r.status_code for r in holds) == {201: 1, 409: 59}
        assert {r.json()["reason"] for r in holds if r.status_code == 409} == {"held"}

        mixed_body = {**body, "start_time": "14:00"}
        mixed = await asyncio.gather(
            *[
                clients[i % 2].post("/api/v1/holds/", json=mixed_body)
                if i % 3
                else clients[i % 2].post(
                    "/api/v1/appointments/", json=booking_payload(doctor["id"], day, "14:00")
                )
                for i in range(60)
            ]
        )
        assert Counter(r.status_code for r in mixed) == {201: 1, 409: 59}
        async with db.connect() as conn:
            assert await conn.scalar(SPANS_TOO_CLOSE) == 0
            taken = await conn.scalar(
                text(
                    "SELECT (SELECT count(*) FROM holds WHERE start_time = '14:00')"
                    " + (SELECT count(*) FROM appointments WHERE start_time = '14:00')"
                )
            )
        assert taken == 1
    finally:
        for client in clients:
            await client.aclose()


async def test_same_idempotency_key_at_once_books_once(
    db: AsyncEngine, two_services: list[str]
) -> None:
    clients = _clients(two_services)
    try:
        doctor = await _doctor(clients[0])
        payload = booking_payload(doctor["id"], next_weekday(0), "11:00")
        headers = {"Idempotency-Key": "call-123-attempt"}
        responses = await asyncio.gather(
            *[
                clients[i % 2].post("/api/v1/appointments/", json=payload, headers=headers)
                for i in range(20)
            ]
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19
        other = dict(payload, start_time="11:30")
        reused = await clients[0].post("/api/v1/appointments/", json=other, headers=headers)
        assert reused.status_code == 422
        assert reused.json()["code"] == "idempotency_key_reused"
        async with db.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM appointments")) == 1
            assert await conn.scalar(text("SELECT count(*) FROM appointment_events")) == 1
    finally:
        for client in clients:
            await client.aclose()


async def test_mixed_book_reschedule_cancel_never_overlaps(
    db: AsyncEngine, two_services: list[str]
) -> None:
    clients = _clients(two_services)
    rng = random.Random(7)
    try:
        doctor = await _doctor(
            clients[0], working_hours={"start": "09:00", "end": "13:00"}, slot_duration_minutes=30
        )
        days = [next_weekday(0), next_weekday(0) + dt.timedelta(days=1)]
        patients = [patient_payload() for _ in range(10)]
        booked: list[str] = []
        statuses: Counter[int] = Counter()

        def random_slot() -> tuple[dt.date, str]:
            minutes = 9 * 60 + rng.randrange(0, 16) * 15  # also off-grid quarter hours
            return rng.choice(days), f"{minutes // 60:02d}:{minutes % 60:02d}"

        async def one_op(i: int) -> None:
            client = clients[i % 2]
            choice = rng.random()
            if choice < 0.5 or not booked:
                day, start = random_slot()
                payload = booking_payload(doctor["id"], day, start, patient=rng.choice(patients))
                response = await client.post("/api/v1/appointments/", json=payload)
                if response.status_code == 201:
                    booked.append(response.json()["id"])
            elif choice < 0.8:
                day, start = random_slot()
                response = await client.put(
                    f"/api/v1/appointments/{rng.choice(booked)}/reschedule",
                    json={"date": day.isoformat(), "start_time": start},
                )
            elif choice < 0.95:
                response = await client.delete(f"/api/v1/appointments/{rng.choice(booked)}")
            else:
                response = await client.put(
                    f"/api/v1/doctors/{doctor['id']}",
                    json={"slot_duration_minutes": rng.choice([30, 45, 60])},
                )
            statuses[response.status_code] += 1

        # How many of the random operations win or are refused depends on the timing. So that
        # every wave has a win and a refusal whatever it is, two clients (one per process) race
        # beside it for a slot no random operation reaches: a day of its own (the random ones
        # book and move only on `days`) at a start on every grid the edits set (9:00 and 12:00
        # begin a 30-, 45- and 60-minute slot in 9-13, and visits there never meet).
        reserved = [
            (days[0] + dt.timedelta(days=weekday), start)
            for weekday in (2, 3, 4)
            for start in ("09:00", "12:00")
        ]
        winners: set[tuple[str, dt.date, dt.time, str]] = set()

        async def contested(wave: int) -> None:
            day, start = reserved[wave]
            responses = await asyncio.gather(
                *[
                    client.post(
                        "/api/v1/appointments/", json=booking_payload(doctor["id"], day, start)
                    )
                    for client in clients
                ]
            )
            codes = Counter(r.status_code for r in responses)
            assert codes == {201: 1, 409: 1}, (day, start, [r.text for r in responses])
            for response in responses:
                if response.status_code == 201:
                    won = (response.json()["id"], day, dt.time.fromisoformat(start), "BOOKED")
                    winners.add(won)
                else:
                    assert response.json()["code"] == "slot_unavailable", response.text

        for wave in range(6):
            await _wave(contested(wave), *[one_op(wave * 40 + i) for i in range(40)])

        assert set(statuses) <= {200, 201, 409}, statuses
        async with db.connect() as conn:
            assert await conn.scalar(OVERLAPS) == 0
            # The contested days hold each slot's one winner, still booked, and nothing else.
            on_reserved = await conn.execute(
                text(
                    "SELECT id::text, date, start_time, status::text FROM appointments"
                    " WHERE date > :last"
                ),
                {"last": days[-1]},
            )
            assert {tuple(row) for row in on_reserved} == winners
    finally:
        for client in clients:
            await client.aclose()


async def _visit_types(client: httpx.AsyncClient, *minutes: int) -> list[str]:
    ids = []
    for length in minutes:
        response = await client.post(
            "/api/v1/visit-types/",
            json={"name": f"Visit {length} {random.random()}", "duration_minutes": length},
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_overlapping_long_visits_raced_leave_one_winner(
    db: AsyncEngine, two_services: list[str]
) -> None:
    """Sixty clients ask for four different starts whose hour-long visits (and 15-minute
    buffers) all collide: exactly one of them gets a 201."""
    clients = _clients(two_services)
    try:
        (hour,) = await _visit_types(clients[0], 60)
        doctor = await _doctor(
            clients[0],
            weekly_hours={"monday": LUNCH_BREAK},
            slot_duration_minutes=15,
            buffer_minutes=15,
            visit_type_ids=[hour],
        )
        day = next_weekday(0)
        starts = ["09:30", "09:45", "10:00", "10:15"]
        responses = await asyncio.gather(
            *[
                clients[i % 2].post(
                    "/api/v1/appointments/",
                    json=booking_payload(doctor["id"], day, starts[i % 4], visit_type_id=hour),
                )
                for i in range(60)
            ]
        )
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: 1, 409: 59}, codes
        assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"taken"}
        async with db.connect() as conn:
            assert await conn.scalar(TOO_CLOSE) == 0
    finally:
        for client in clients:
            await client.aclose()


async def test_storm_with_visit_types_rules_and_schedule_edits_keeps_spacing(
    db: AsyncEngine, two_services: list[str]
) -> None:
    """Bookings of three lengths, moves, cancellations, holds (made, released, expired,
    booked through) and edits of the schedule (week, overrides, leaves, grid, notice) from two
    processes at once; afterwards no two active appointments or holds are closer than the
    buffer and no day is over its limit. Beside each wave, a lane takes one hold through every
    one of those steps where each answer is known, whatever the timing."""
    clients = _clients(two_services)
    rng = random.Random(12)
    try:
        visit_types = await _visit_types(clients[0], 15, 45, 60)
        doctor = await _doctor(
            clients[0],
            weekly_hours={"monday": LUNCH_BREAK, "tuesday": LUNCH_BREAK},
            slot_duration_minutes=15,
            buffer_minutes=10,
            max_appointments_per_day=7,
            visit_type_ids=visit_types,
        )
        doctor_url = f"/api/v1/doctors/{doctor['id']}"
        days = [next_weekday(0), next_weekday(0) + dt.timedelta(days=1)]
        patients = [patient_payload() for _ in range(10)]
        booked: list[str] = []
        held: list[str] = []
        statuses: Counter[int] = Counter()

        # Half the random bookings through a hold go to a Monday where they race only each
        # other and the edits of the week and the grid. Whether any of them books depends on
        # the timing (most of their holds are refused, and an edit between a hold and its
        # booking refuses that too), so the storm's guaranteed conversions are the lanes'.
        through_days = [*days, days[0] + dt.timedelta(days=7), days[0] + dt.timedelta(days=7)]

        def random_slot(among: list[dt.date] = days) -> tuple[dt.date, str]:
            minutes = 9 * 60 + rng.randrange(0, 28) * 15
            return rng.choice(among), f"{minutes // 60:02d}:{minutes % 60:02d}"

        def schedule_edit() -> tuple[str, str, dict[str, Any] | None]:
            day = rng.choice(days).isoformat()
            return rng.choice(
                [
                    ("PUT", doctor_url, {"weekly_hours": {"monday": LUNCH_BREAK}}),
                    ("PUT", doctor_url, {"weekly_hours": {"monday": [LUNCH_BREAK[1]]}}),
                    ("PUT", doctor_url, {"slot_duration_minutes": rng.choice([15, 30])}),
                    ("PUT", doctor_url, {"min_notice_minutes": rng.choice([0, 60])}),
                    ("PUT", f"{doctor_url}/overrides/{day}", {"windows": [LUNCH_BREAK[0]]}),
                    ("DELETE", f"{doctor_url}/overrides/{day}", None),
                    (
                        "POST",
                        f"{doctor_url}/leaves",
                        {"date": day, "start_time": "11:00", "end_time": "11:30"},
                    ),
                ]
            )

        async def hold_op(client: httpx.AsyncClient) -> httpx.Response | None:
            choice = rng.random()
            if choice < 0.4 or not held:
                day, start = random_slot()
                body = {"doctor_id": doctor["id"], "date": day.isoformat(), "start_time": start}
                body["visit_type_id"] = rng.choice([None, *visit_types])
                response = await client.post("/api/v1/holds/", json=body)
                if response.status_code == 201:
                    held.append(response.json()["id"])
                return response
            hold_id = rng.choice(held)
            if choice < 0.6:
                return await client.delete(f"/api/v1/holds/{hold_id}")
            if choice < 0.75:  # time passes for this one: it expires
                async with db.begin() as conn:
                    await conn.execute(
                        text("UPDATE holds SET expires_at = now() WHERE id = :id"), {"id": hold_id}
                    )
                return None
            # The agent's flow: book through a hold just made (or, if that failed, through a
            # random one, which may since have been booked, released or expired).
            day, start = random_slot(through_days)
            body = {"doctor_id": doctor["id"], "date": day.isoformat(), "start_time": start}
            fresh = await client.post("/api/v1/holds/", json=body)
            if fresh.status_code == 201:
                hold_id = fresh.json()["id"]
            payload = {"hold_id": hold_id, "source": "AI_CALLING_AGENT"}
            payload["patient"] = rng.choice(patients)
            response = await client.post("/api/v1/appointments/", json=payload)
            if response.status_code == 201:
                booked.append(response.json()["id"])
            return response

        async def one_op(i: int) -> None:
            client = clients[i % 2]
            choice = rng.random()
            if choice < 0.3:
                response = await hold_op(client)
                if response is not None:
                    statuses[response.status_code] += 1
                return
            if choice < 0.6 or not booked:
                day, start = random_slot()
                payload = booking_payload(
                    doctor["id"],
                    day,
                    start,
                    patient=rng.choice(patients),
                    visit_type_id=rng.choice([None, *visit_types]),
                )
                response = await client.post("/api/v1/appointments/", json=payload)
                if response.status_code == 201:
                    booked.append(response.json()["id"])
            elif choice < 0.8:
                day, start = random_slot()
                response = await client.put(
                    f"/api/v1/appointments/{rng.choice(booked)}/reschedule",
                    json={"date": day.isoformat(), "start_time": start},
                )
            elif choice < 0.9:
                response = await client.delete(f"/api/v1/appointments/{rng.choice(booked)}")
            else:
                method, url, body = schedule_edit()
                response = await client.request(method, url, json=body)
            statuses[response.status_code] += 1

        # Which random operations happen, and which of them win, depends on the timing: the
        # dice fall with what `booked` and `held` hold when an operation starts, and the edits
        # and the other operations refuse most holds and bookings through them. So each wave
        # also runs a lane, beside its operations and on the same doctor: a hold made,
        # released, made again, expired, made again and booked through, from both processes in
        # turn. Its slot is one no random operation reaches and every schedule the edits set
        # offers: the Mondays two and three weeks after `days[0]` (the random operations use
        # `days` and `through_days`, the overrides and leaves `days`), 13:00 to 14:30 (every
        # week the edits set keeps Monday 13-16, on both grids, 15 and 30 minutes from 13:00),
        # a 15-minute visit (its length does not follow the grid), half an hour apart (more
        # than a visit and the 10-minute buffer), four a day (with a lane's hold, under the
        # limit of 7), weeks ahead (past any notice). So every step's answer is known.
        lane_days = [days[0] + dt.timedelta(days=14), days[0] + dt.timedelta(days=21)]
        quarter_hour = visit_types[0]
        lane_holds: set[tuple[str, str, str | None]] = set()
        lane_bookings: set[tuple[str, dt.date, dt.time, str]] = set()

        async def lane(wave: int) -> None:
            day = lane_days[wave // 4]
            minutes = 13 * 60 + 30 * (wave % 4)
            start = dt.time(minutes // 60, minutes % 60)
            here, there = clients[wave % 2], clients[(wave + 1) % 2]
            body = {
                "doctor_id": doctor["id"],
                "date": day.isoformat(),
                "start_time": start.strftime("%H:%M"),
                "visit_type_id": quarter_hour,
            }
            released = await here.post("/api/v1/holds/", json=body)
            assert released.status_code == 201, released.text
            gone = await there.delete(f"/api/v1/holds/{released.json()['id']}")
            assert gone.status_code == 204, gone.text
            # A released hold frees its slot.
            lapsed = await there.post("/api/v1/holds/", json=body)
            assert lapsed.status_code == 201, lapsed.text
            # Time passes for it, by a minute, so that a service whose clock is a little behind
            # the database's sees it expired too.
            async with db.begin() as conn:
                await conn.execute(
                    text("UPDATE holds SET expires_at = now() - interval '1 minute' WHERE id = :i"),
                    {"i": lapsed.json()["id"]},
                )
            # An expired hold frees it too.
            kept = await here.post("/api/v1/holds/", json=body)
            assert kept.status_code == 201, kept.text
            payload = {
                "hold_id": kept.json()["id"],
                "source": "AI_CALLING_AGENT",
                "patient": patient_payload(),
            }
            booking = await there.post("/api/v1/appointments/", json=payload)
            assert booking.status_code == 201, booking.text
            appointment = booking.json()
            assert (appointment["date"], appointment["start_time"]) == (
                body["date"],
                body["start_time"],
            )
            # A booked hold books nothing more, and its slot is no longer free.
            twice = await here.post(
                "/api/v1/appointments/", json={**payload, "patient": patient_payload()}
            )
            assert twice.status_code == 409 and twice.json()["code"] == "invalid_state", twice.text
            over = await there.post("/api/v1/holds/", json=body)
            assert over.status_code == 409 and over.json()["reason"] == "taken", over.text
            lane_holds.update(
                {
                    (released.json()["id"], "released", None),
                    (lapsed.json()["id"], "expired", None),
                    (kept.json()["id"], "booked", appointment["id"]),
                }
            )
            lane_bookings.add((appointment["id"], day, start, "BOOKED"))

        for wave in range(8):
            await _wave(lane(wave), *[one_op(wave * 40 + i) for i in range(40)])

        # 404: deleting an override that is not there; 409: a leave over another one, a
        # refused slot, or a hold already booked or released.
        assert set(statuses) <= {200, 201, 204, 404, 409}, statuses
        async with db.connect() as conn:
            assert await conn.scalar(TOO_CLOSE) == 0
            assert await conn.scalar(OVER_THE_LIMIT) == 0
            assert await conn.scalar(OVERLAPS) == 0
            assert await conn.scalar(SPANS_TOO_CLOSE) == 0
            assert await conn.scalar(SPANS_OVER_THE_LIMIT) == 0
            # The lanes' days hold what the lanes did and nothing else: each lane's released
            # hold, its expired one, the one it converted (pointing at its booking), and the
            # booking, still at the hold's slot. (Only the expired one is asked whether it
            # expired: a slow run may outlast the others' five minutes.)
            first = {"first": lane_days[0]}
            holds = await conn.execute(
                text(
                    "SELECT id::text, CASE WHEN status = 'active' AND expires_at <= now()"
                    " THEN 'expired' ELSE status::text END, appointment_id::text"
                    " FROM holds WHERE date >= :first"
                ),
                first,
            )
            assert {tuple(row) for row in holds} == lane_holds
            bookings = await conn.execute(
                text(
                    "SELECT id::text, date, start_time, status::text FROM appointments"
                    " WHERE date >= :first"
                ),
                first,
            )
            assert {tuple(row) for row in bookings} == lane_bookings
    finally:
        for client in clients:
            await client.aclose()


async def test_housekeeping_keeps_fresh_idempotency_keys(db: AsyncEngine) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.services import idempotency_service

    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (actor, key, request_hash, created_at) VALUES"
                " ('agent', 'old', 'h', now() - interval '49 hours'),"
                " ('agent', 'day-old', 'h', now() - interval '25 hours'),"
                " ('agent', 'new', 'h', now())"
            )
        )
    async with async_sessionmaker(db).begin() as session:
        assert await idempotency_service.purge_expired(session) == 1
    async with db.connect() as conn:
        kept = set((await conn.execute(text("SELECT key FROM idempotency_keys"))).scalars())
    assert kept == {"day-old", "new"}
