"""Sentences a voice agent can read out, with dates and times in clinic time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from app.errors import INVALID


def day(date: dt.date | str) -> str:
    """`Tuesday 1 December`."""
    value = dt.date.fromisoformat(date) if isinstance(date, str) else date
    return f"{value:%A} {value.day} {value:%B}"


def when(date: dt.date | str, start: dt.time | str) -> str:
    """`Tuesday 1 December at 10:30`."""
    text = start if isinstance(start, str) else f"{start:%H:%M}"
    return f"{day(date)} at {text[:5]}"


def slots(found: Sequence[Mapping[str, str]]) -> str:
    """`Tuesday 1 December at 10:30, 11:00 and Wednesday 2 December at 09:00` (each day named
    once, for slots in time order)."""
    said: list[str] = []
    for i, slot in enumerate(found):
        same_day = i > 0 and found[i - 1]["date"] == slot["date"]
        said.append(slot["start_time"][:5] if same_day else when(slot["date"], slot["start_time"]))
    return said[0] if len(said) == 1 else f"{', '.join(said[:-1])} and {said[-1]}"


def failure(body: Mapping[str, Any]) -> str:
    """What went wrong, and for a refused slot the nearest free ones (in time order)."""
    sentence = str(body.get("detail", "That did not work."))
    alternatives: Sequence[Mapping[str, str]] = body.get("alternatives") or ()
    if alternatives:
        sentence += f" The nearest free slots are {slots(alternatives[:3])}."
    errors: Sequence[Mapping[str, str]] = body.get("errors") or ()
    # A 400 whose detail is written for the caller says it all; the generic one adds each
    # field's sentence (each names its field: `app/error_messages.py`).
    if errors and body.get("detail") == INVALID:
        sentence += " " + "; ".join(e["message"] for e in errors) + "."
    return sentence


def count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


# Why a day offers nothing (`unavailable_reason`), in words; None: the day is worked, but no
# slot of it is free (taken, held, or inside the doctor's notice).
REASON_WORDS: dict[str | None, str] = {
    "past": "the day has passed",
    "doctor_inactive": "the doctor is not taking appointments",
    "beyond_horizon": "it is further ahead than the doctor takes bookings",
    "holiday": "it is a clinic holiday",
    "non_working_day": "the doctor does not work that day",
    "leave": "the doctor is on leave",
    "daily_limit": "the doctor's day is fully booked",
    None: "every slot is taken",
}


def why_not(reasons: Sequence[str | None]) -> str:
    """Why days offered nothing, each day's `unavailable_reason` in order: one reason, or
    each with its count of days."""
    counts: dict[str | None, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    if len(counts) == 1:
        return REASON_WORDS[reasons[0]]
    return "; ".join(f"{REASON_WORDS[r]} ({count(n, 'day')})" for r, n in counts.items())


def span(first: dt.date, last: dt.date) -> str:
    """`on Tuesday 1 December`, or `from Tuesday 1 December to Friday 4 December`."""
    return f"on {day(first)}" if first == last else f"from {day(first)} to {day(last)}"
