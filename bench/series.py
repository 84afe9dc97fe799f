"""Booking a 12-visit weekly series against 12 single bookings.

Both phases book into the empty weeks of doctors made for them through the API (weekdays
08:00-18:00, 10-minute slots, no rules that refuse), so the two ask the same of the database:
`series_12` posts `POST /appointments/series` (12 Mondays, or Tuesdays, ... at one time),
`booking_fresh` posts single bookings on other such doctors. The figure is series per second
times 12 as a ratio to bookings per second (`series_vs_booking`): what booking a course of 12
visits in one call costs per visit, against booking each visit alone.

`make bench` runs it after its other phases (bench/run.py); `python -m bench.series` runs it
alone, on a throw-away database, without the baseline beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from bench.run import Phase

OCCURRENCES = 12
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
HOURS = {"start": "08:00", "end": "18:00"}
SLOT_MINUTES = 10
SLOTS_A_DAY = 60
Measure = Callable[[str, str, list[list[str]]], "Phase"]


def fresh_doctors(base: str, key: str, count: int, tag: str) -> list[str]:
    """`count` doctors with empty calendars, made through the API."""
    made = []
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        for n in range(count):
            response = client.post(
                "/api/v1/doctors/",
                json={
                    "name": f"Dr Course {tag} {n:02d}",
                    "email": f"course-{tag}-{n:02d}@clinic.example",
                    "specialization": "Physiotherapy",
                    "experience_years": 8,
                    "languages": ["English"],
                    "consultation_type": "in_person",
                    "general_working_days_text": "Weekdays",
                    "working_days": list(WEEKDAYS),
                    "working_hours": HOURS,
                    "slot_duration_minutes": SLOT_MINUTES,
                },
            )
            response.raise_for_status()
            made.append(response.json()["id"])
    return made


def _clock(slot: int) -> str:
    minutes = 8 * 60 + slot * SLOT_MINUTES
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _mobile(n: int) -> str:
    return f"+9191{n % 100_000_000:08d}"


def series_lines(doctors: list[str], first_monday: dt.date, blocks: int) -> list[str]:
    """One line per 12-week series: every doctor, weekday and slot time, in `blocks` runs of
    12 weeks; no two lines share a slot."""
    lines = []
    for block in range(blocks):
        for slot in range(SLOTS_A_DAY):
            for weekday in range(len(WEEKDAYS)):
                for doctor in doctors:
                    start = first_monday + dt.timedelta(weeks=block * OCCURRENCES, days=weekday)
                    body = {
                        "doctor_id": doctor,
                        "start_date": start.isoformat(),
                        "start_time": _clock(slot),
                        "source": "AI_CALLING_AGENT",
                        "patient": {"name": "Course Patient", "mobile_number": _mobile(len(lines))},
                        "recurrence": {"frequency": "weekly", "count": OCCURRENCES},
                    }
                    lines.append(f"POST\t/api/v1/appointments/series\t{json.dumps(body)}")
    return lines


def single_lines(doctors: list[str], first_monday: dt.date, weeks: int) -> list[str]:
    """One line per single booking: every doctor's every slot over `weeks`, days interleaved
    so that bookings in flight at once are of different doctor-days, as the series' are."""
    lines = []
    for slot in range(SLOTS_A_DAY):
        for week in range(weeks):
            for weekday in range(len(WEEKDAYS)):
                for doctor in doctors:
                    day = first_monday + dt.timedelta(weeks=week, days=weekday)
                    body = {
                        "doctor_id": doctor,
                        "date": day.isoformat(),
                        "start_time": _clock(slot),
                        "source": "AI_CALLING_AGENT",
                        "patient": {
                            "name": "Single Patient",
                            "mobile_number": _mobile(50_000_000 + len(lines)),
                        },
                    }
                    lines.append(f"POST\t/api/v1/appointments/\t{json.dumps(body)}")
    return lines


@dataclass
class SeriesRun:
    series_per_second: float
    bookings_per_second: float
    # Series per second times 12, over single bookings per second, measured side by side.
    series_vs_booking: float | None


def _parts(lines: list[str], count: int) -> list[list[str]]:
    size = len(lines) // count
    return [lines[i * size : (i + 1) * size] for i in range(count)]


def series_vs_single(
    base: str,
    key: str,
    today: dt.date,
    measure: Measure,
    bursts: int,
    warm: Callable[[str, list[str]], object],
    doctors: int = 20,
) -> SeriesRun:
    """Both phases on doctors of their own: a warm-up each (each connection prepares the
    statements once), then `bursts` bursts through `measure`."""
    first_monday = today + dt.timedelta(days=7 - today.weekday())
    course = fresh_doctors(base, key, doctors, "series")
    single = fresh_doctors(base, key, doctors, "single")
    courses = series_lines(course, first_monday, blocks=2)
    singles = single_lines(single, first_monday, weeks=4)
    warm_series, warm_single = courses[:200], singles[:2000]
    warm(base, warm_series)
    series = measure("series_12", base, _parts(courses[200:], bursts))
    warm(base, warm_single)
    booking = measure("booking_fresh", base, _parts(singles[2000:], bursts))
    ratio = series.rps * OCCURRENCES / booking.rps if booking.rps else None
    return SeriesRun(series.rps, booking.rps, ratio)


def main() -> None:
    """Alone: a throw-away database, the service as `make run` serves it, both phases."""
    from app.launcher import migrate
    from bench.run import API_KEY, combined, server, wrk
    from tests.db import throwaway_database
    from tests.servers import free_port

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 2)))
    parser.add_argument("--doctors", type=int, default=20)
    args = parser.parse_args()
    bursts = max(1, args.seconds // 2)
    with throwaway_database() as url:
        migrate(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "SERVICE_API_KEY": f"bench:{API_KEY}",
            "LOG_LEVEL": "WARNING",
            "WORKERS": str(args.workers),
            "PORT": str(port),
        }
        phases: dict[str, Any] = {}

        def measure(name: str, at: str, parts: list[list[str]]) -> Phase:
            phases[name] = combined(name, [wrk(name, at, lines, 2) for lines in parts])
            return phases[name]

        with server([sys.executable, "-m", "app", "serve"], env, f"{base}/ready"):
            run = series_vs_single(
                base,
                API_KEY,
                dt.date.today(),
                measure,
                bursts,
                lambda at, lines: wrk("warmup", at, lines, 2),
                args.doctors,
            )
    print(
        json.dumps(
            {
                "series_per_second": round(run.series_per_second, 1),
                "bookings_per_second": round(run.bookings_per_second, 1),
                "series_vs_booking": run.series_vs_booking and round(run.series_vs_booking, 3),
                "statuses": {name: phase.statuses for name, phase in phases.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
