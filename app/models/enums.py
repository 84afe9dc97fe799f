"""Enumerations stored in the database, with the request's spelling of their values."""

from __future__ import annotations

import enum


class AppointmentStatus(enum.StrEnum):
    BOOKED = "BOOKED"
    CANCELLED = "CANCELLED"
    RESCHEDULED = "RESCHEDULED"


ACTIVE_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.RESCHEDULED)


class AppointmentSource(enum.StrEnum):
    AI_CALLING_AGENT = "AI_CALLING_AGENT"
    ADMIN = "ADMIN"


class CalendarSyncStatus(enum.StrEnum):
    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"
    DISABLED = "disabled"


class AppointmentAction(enum.StrEnum):
    CREATED = "created"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
