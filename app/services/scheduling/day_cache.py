"""Each doctor-day's leaves and bookings, remembered under the version that describes them.

`doctor_days.version` changes with every change to a doctor's appointments or leaves on that
date (triggers, migration 0004), so the blocks read at one version stay exact for as long as
that version is current. An availability read first fetches the versions of its days (one
small statement); when every day is remembered at its current version it skips reading and
decoding the blocks. The engine still runs on every read, with the current schedule and the
current time, so nothing time-dependent is remembered. Per process, least recently used first
out.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from app.services.scheduling.engine import Span

DayBlocks = tuple[tuple[Span, ...], tuple[Span, ...]]  # leaves, active appointments


class DayCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._days: OrderedDict[tuple[uuid.UUID, dt.date, int], DayBlocks] = OrderedDict()

    def lookup(
        self, doctor_id: uuid.UUID, days: Sequence[dt.date], versions: Mapping[dt.date, int]
    ) -> tuple[Mapping[dt.date, Sequence[Span]], Mapping[dt.date, Sequence[Span]]] | None:
        """Leaves and bookings by day for all of `days`, or None if any is not remembered at
        its current version."""
        leaves: dict[dt.date, Sequence[Span]] = {}
        busy: dict[dt.date, Sequence[Span]] = {}
        entries = self._days
        for day in days:
            key = (doctor_id, day, versions.get(day, 0))
            blocks = entries.get(key)
            if blocks is None:
                return None
            entries.move_to_end(key)
            leaves[day], busy[day] = blocks
        return leaves, busy

    def remember(
        self,
        doctor_id: uuid.UUID,
        days: Sequence[dt.date],
        versions: Mapping[dt.date, int],
        leaves: Mapping[dt.date, Sequence[Span]],
        busy: Mapping[dt.date, Sequence[Span]],
    ) -> None:
        """Remember `days` as read together with `versions` (one statement, one snapshot)."""
        if self.capacity <= 0:
            return
        entries = self._days
        for day in days:
            key = (doctor_id, day, versions.get(day, 0))
            entries[key] = (tuple(leaves.get(day, ())), tuple(busy.get(day, ())))
            entries.move_to_end(key)
        while len(entries) > self.capacity:
            entries.popitem(last=False)
