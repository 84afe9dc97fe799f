"""The shape of the scheduling reads, and its one decoder.

Every read of a doctor and its days (`scheduling.queries`) selects the doctor's columns
(`DOCTOR_COLUMNS`) and the versions of the days asked for (`VERSION_COLUMNS`); a read that
needs what the days add selects `DAY_COLUMNS` as well, whoever it is for (one doctor's range,
several ranges, several doctors). They come back as typed arrays, which the driver decodes
natively (no JSON in between), and are decoded here into the engine's values.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from functools import lru_cache

import asyncpg

from app.models.enums import active_status_sql, hold_counts_sql
from app.services.scheduling.schedule import (
    DayFacts,
    HeldSpan,
    Rules,
    Schedule,
    Span,
    Window,
    facts_by_day,
    parse_windows,
)

Facts = dict[dt.date, DayFacts]

# The doctor columns that hold the booking rules, in `Rules`' order.
RULE_COLUMNS = (
    "min_notice_minutes",
    "booking_horizon_days",
    "buffer_minutes",
    "max_appointments_per_day",
)
DOCTOR_COLUMNS = (
    "d.id, d.name, d.weekly_hours::text AS week, d.slot_duration_minutes, d.is_active, "
    + "".join(f"d.{column}, " for column in RULE_COLUMNS)
    + "d.visit_type_ids, d.schedule_version"
)
VERSION_COLUMNS = "v.days AS version_days, v.versions AS day_versions"
DAY_COLUMNS = f"""{VERSION_COLUMNS},
           l.days AS leave_days, l.starts AS leave_starts, l.ends AS leave_ends,
           a.days AS busy_days, a.starts AS busy_starts, a.ends AS busy_ends,
           o.days AS override_days, o.windows AS override_windows, h.days AS holidays,
           k.days AS hold_days, k.starts AS hold_starts, k.ends AS hold_ends,
           k.expiries AS hold_expiries"""


def versions_sql(first: str = ":first", last: str = ":last") -> str:
    """What `VERSION_COLUMNS` reads (`v`): the versions of the doctor `d`'s days from `first`
    to `last`."""
    return f"""
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(version) AS versions
             FROM doctor_days
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}) v ON true
"""


def days_sql(first: str, last: str, exclude_hold: str, exclude: str | None = None) -> str:
    """What `DAY_COLUMNS` reads for the doctor `d`, from `first` to `last`: each day's version,
    leaves, active appointments (but `exclude`, a reschedule's own), overrides, the clinic's
    holidays and the holds that count (but `exclude_hold`, a booking's own)."""
    excluded = "" if exclude is None else f" AND id IS DISTINCT FROM {exclude}"
    return f"""{versions_sql(first, last)}
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM doctor_leaves
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}) l ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends
             FROM appointments
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}
              AND {active_status_sql()}{excluded}) a ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(windows::text) AS windows
             FROM doctor_date_overrides
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}) o ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days
             FROM clinic_holidays
            WHERE date BETWEEN {first} AND {last}) h ON true
      LEFT JOIN LATERAL (
           SELECT array_agg(date) AS days, array_agg(start_time) AS starts,
                  array_agg(end_time) AS ends, array_agg(expires_at) AS expiries
             FROM holds
            WHERE doctor_id = d.id AND date BETWEEN {first} AND {last}
              AND {hold_counts_sql()} AND id IS DISTINCT FROM {exclude_hold}) k ON true
    """


@lru_cache(maxsize=4096)
def _schedule_of(
    week: str,
    slot_minutes: int,
    is_active: bool,
    rules: Rules,
) -> Schedule:
    # Keyed by the week's JSON text: parsed once per distinct schedule, not per request.
    return Schedule.from_weekly_hours(json.loads(week), slot_minutes, is_active, rules)


def schedule_of(row: asyncpg.Record) -> Schedule:
    """The schedule from a row of `DOCTOR_COLUMNS`."""
    rules = Rules(*(row[column] for column in RULE_COLUMNS))
    return _schedule_of(row["week"], row["slot_duration_minutes"], row["is_active"], rules)


@lru_cache(maxsize=4096)
def windows_of(text: str) -> tuple[Window, ...]:
    """An override's windows from their JSON text."""
    return parse_windows(json.loads(text))


def versions_of(row: asyncpg.Record) -> dict[dt.date, int]:
    """The days' versions from a row of `VERSION_COLUMNS` (a day never claimed has none: 0)."""
    return dict(zip(row["version_days"] or (), row["day_versions"] or (), strict=True))


def _zipped(
    days: Sequence[dt.date] | None,
    starts: Sequence[dt.time | None] | None,
    ends: Sequence[dt.time | None] | None,
) -> list[Span]:
    if not days:
        return []
    return list(zip(days, starts or (), ends or (), strict=True))


def _held(
    days: Sequence[dt.date] | None,
    starts: Sequence[dt.time] | None,
    ends: Sequence[dt.time] | None,
    expiries: Sequence[dt.datetime] | None,
) -> list[HeldSpan]:
    if not days:
        return []
    return list(zip(days, starts or (), ends or (), expiries or (), strict=True))


def days_of(row: asyncpg.Record) -> Facts:
    """What the days add, from a row of `DAY_COLUMNS`."""
    overrides = {
        day: windows_of(text)
        for day, text in zip(row["override_days"] or (), row["override_windows"] or (), strict=True)
    }
    return facts_by_day(
        _zipped(row["leave_days"], row["leave_starts"], row["leave_ends"]),
        _zipped(row["busy_days"], row["busy_starts"], row["busy_ends"]),
        overrides,
        frozenset(row["holidays"] or ()),
        _held(row["hold_days"], row["hold_starts"], row["hold_ends"], row["hold_expiries"]),
    )
