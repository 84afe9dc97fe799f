"""Sentences a voice agent can read out, with dates and times in clinic time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any


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
    if errors:
        # Each message names its field (`app/error_messages.py`).
        sentence += " " + "; ".join(e["message"] for e in errors) + "."
    return sentence


def count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")
