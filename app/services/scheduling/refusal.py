"""Why a slot is not offered: the first of the spec's reasons (`enums.SlotReason`) that applies.

The reasons come from the engine's own checks (`engine.closed_reason`, `at_daily_limit` and the
`mark_*` passes), run on the one slot asked for in the spec's order, so what booking refuses
and what availability offers cannot drift apart. tests/test_availability_engine.py holds both
to a reference model written from the spec, and checks that a slot is refused exactly when it
is not offered.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from app.models.enums import SlotReason
from app.services.scheduling.engine import (
    Grid,
    Moment,
    at_daily_limit,
    closed_reason,
    grid,
    has_clock_change,
    mark_busy,
    mark_held,
    mark_inside_notice,
    mark_leaves,
    mark_off_clock,
)
from app.services.scheduling.schedule import DayFacts, Schedule

# Read out by the phone agent: "That slot is not available for booking (<sentence>)."
REASON_SENTENCES: dict[SlotReason, str] = {
    "past": "it has already started",
    "doctor_inactive": "the doctor is not taking appointments",
    "beyond_horizon": "it is further ahead than the doctor takes bookings",
    "holiday": "the clinic is closed that day",
    "non_working_day": "the doctor does not work that day",
    "leave": "the doctor is on leave then",
    "outside_hours": "it is not one of the doctor's slot times that day",
    "too_soon": "it is inside the doctor's minimum notice",
    "daily_limit": "the doctor's day is fully booked",
    "held": "it is being held for another caller",
    "taken": "it is taken, or too close to another appointment",
}


def refusal(
    schedule: Schedule,
    day: dt.date,
    start: dt.time,
    facts: DayFacts,
    now: dt.datetime,
    tz: ZoneInfo,
    visit_minutes: int | None = None,
) -> SlotReason | None:
    """Why the slot starting at `start` is not offered, the first of `SLOT_REASONS` that
    applies; None when `day_availability` offers it."""
    visit = visit_minutes or schedule.slot_minutes
    asked = Grid.asked(start, visit * 60)
    # Whether the check just run takes the slot asked for; each one that does returns.
    taken = bytearray(1)
    # "Past" is the notice's own check with no notice: the slot starts at or before now.
    started = Moment.of(now, tz)
    mark_inside_notice(taken, asked, day, started, tz)
    if taken[0]:
        return "past"
    # The day's reasons but the daily limit, which comes later in a slot's order.
    reason, windows = closed_reason(schedule, day, facts, started.today)
    if reason is not None:
        return reason
    mark_leaves(taken, asked, facts.leaves)
    if taken[0]:
        return "leave"
    if has_clock_change(day, tz):
        mark_off_clock(taken, asked, day, tz)
    if taken[0] or asked.starts[0] not in grid(windows, schedule.slot_minutes, visit).index:
        return "outside_hours"
    rules = schedule.rules
    mark_inside_notice(taken, asked, day, Moment.of(now, tz, rules.min_notice_minutes), tz)
    if taken[0]:
        return "too_soon"
    holds = facts.holding(now)
    if at_daily_limit(rules, facts, holds):
        return "daily_limit"
    return occupied(schedule, start, visit, facts, now)


def occupied(
    schedule: Schedule, start: dt.time, visit_minutes: int, facts: DayFacts, now: dt.datetime
) -> Literal["held", "taken"] | None:
    """Whether a counting hold, or else an active appointment, comes closer than the buffer
    to the visit of `visit_minutes` at `start`: the last two of a slot's checks, which are
    also all a visit taken back from a no-show must pass (`front_desk_service.undo`)."""
    asked = Grid.asked(start, visit_minutes * 60)
    taken = bytearray(1)
    buffer = schedule.rules.buffer_minutes * 60
    mark_held(taken, asked, facts.holding(now), buffer)
    if taken[0]:
        return "held"
    mark_busy(taken, asked, facts.busy, buffer, visit_minutes == schedule.slot_minutes)
    if taken[0]:
        return "taken"
    return None
