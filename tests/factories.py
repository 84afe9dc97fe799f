"""Plain typed helpers that create test data through the API."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import httpx

_counter = itertools.count(1)


def next_weekday(weekday: int, weeks_ahead: int = 1) -> dt.date:
    """A date on `weekday` (0 = Monday) at least a week from today, so never in the past."""
    today = dt.date.today()
    days = (weekday - today.weekday()) % 7 + 7 * weeks_ahead
    return today + dt.timedelta(days=days)


def doctor_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    payload: dict[str, Any] = {
        "name": f"Dr Test {n}",
        "email": f"doctor{n}@clinic.example",
        "specialization": "Cardiology",
        "experience_years": 10,
        "languages": ["English", "Hindi"],
        "consultation_type": "in_person",
        "general_working_days_text": "Weekdays",
        "working_days": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        "working_hours": {"start": "09:00", "end": "17:00"},
        "slot_duration_minutes": 30,
    }
    if "weekly_hours" in overrides:  # the week alone; the request's fields follow from it
        del payload["working_days"], payload["working_hours"]
    payload.update(overrides)
    return payload


def patient_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    payload: dict[str, Any] = {
        "name": f"Patient {n}",
        "mobile_number": f"+1415555{n % 10000:04d}",
        "email": f"patient{n}@mail.example",
    }
    payload.update(overrides)
    return payload


async def create_doctor(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/doctors/", json=doctor_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_patient(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/patients/", json=patient_payload(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def booking_payload(
    doctor_id: str, day: dt.date, start: str, patient_id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "doctor_id": doctor_id,
        "date": day.isoformat(),
        "start_time": start,
        "source": "AI_CALLING_AGENT",
    }
    if patient_id:
        payload["patient_id"] = patient_id
    else:
        payload["patient"] = patient_payload()
    payload.update(overrides)
    return payload


async def book(
    client: httpx.AsyncClient, doctor_id: str, day: dt.date, start: str, **kwargs: Any
) -> httpx.Response:
    return await client.post(
        "/api/v1/appointments/", json=booking_payload(doctor_id, day, start, **kwargs)
    )
