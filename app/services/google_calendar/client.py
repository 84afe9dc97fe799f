"""The Google Calendar client: make one event in a doctor's calendar match a spec.

Calls go through the official client with service-account credentials and domain-wide
delegation; each blocking call runs in a worker thread with its own httplib2 connection (they
are not thread-safe) and a timeout. Failures come out as retryable or permanent.
"""

from __future__ import annotations

import base64
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import GoogleAuthError, TransportError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from app.config import Settings
from app.services.outbox.delivery import (
    PermanentDeliveryError,
    RetryableDeliveryError,
    parse_retry_after,
)

SCOPES = ["https://www.googleapis.com/auth/calendar"]
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}


def event_id_for(appointment_id: uuid.UUID) -> str:
    """A deterministic Google event id (base32hex, lower case) for an appointment.

    A create retried after a lost response then meets 409 "duplicate" for its own event
    instead of creating a second one.
    """
    return base64.b32hexencode(appointment_id.bytes).decode().rstrip("=").lower()


@dataclass(frozen=True, slots=True)
class EventSpec:
    event_id: str
    calendar_id: str
    previous_calendar_id: str | None
    known: bool
    active: bool
    body: dict[str, Any]


def _reason(exc: HttpError) -> str:
    details = getattr(exc, "error_details", None) or []
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("reason", ""))
    return ""


def _status(exc: HttpError) -> int:
    return int(getattr(exc, "status_code", None) or exc.resp.status)


def classify(exc: BaseException) -> Exception:
    """Map a client failure to retryable or permanent."""
    if isinstance(exc, HttpError):
        status, reason = _status(exc), _reason(exc)
        retry_after = parse_retry_after(exc.resp.get("retry-after"))
        message = f"Google Calendar answered {status}{f' {reason}' if reason else ''}"
        if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
            return RetryableDeliveryError(message, retry_after)
        return PermanentDeliveryError(message)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return RetryableDeliveryError("Google Calendar timed out")
    if isinstance(exc, (OSError, httplib2.HttpLib2Error, TransportError)):
        return RetryableDeliveryError(f"Google Calendar unreachable: {type(exc).__name__}")
    if isinstance(exc, GoogleAuthError):
        # A token refusal can be an outage or a configuration fault; retries show which.
        return RetryableDeliveryError(f"Google authentication failed: {type(exc).__name__}")
    return PermanentDeliveryError(f"Google Calendar call failed: {type(exc).__name__}")


class GoogleCalendarClient:
    """Blocking client; call `apply` from a worker thread."""

    def __init__(self, settings: Settings) -> None:
        assert settings.google_calendar_credentials_path is not None
        self._credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            str(settings.google_calendar_credentials_path), scopes=SCOPES
        ).with_subject(settings.google_calendar_delegated_admin_email)
        self._endpoint = settings.google_calendar_api_endpoint
        self._timeout = settings.google_calendar_timeout_seconds
        self._local = threading.local()
        self._lock = threading.Lock()

    def _events(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            with self._lock:  # the shared credentials refresh one at a time
                http = google_auth_httplib2.AuthorizedHttp(
                    self._credentials, http=httplib2.Http(timeout=self._timeout)
                )
                service = build(
                    "calendar",
                    "v3",
                    http=http,
                    static_discovery=True,
                    cache_discovery=False,
                    client_options={"api_endpoint": self._endpoint},
                )
            self._local.service = service
        return service.events()

    def apply(self, spec: EventSpec) -> str | None:
        """Make Google match `spec`; return the event id if the event now exists."""
        try:
            if not spec.active:
                self._delete(spec)
                return None
            self._upsert(spec)
            return spec.event_id
        except HttpError as exc:
            raise classify(exc) from exc
        except (RetryableDeliveryError, PermanentDeliveryError):
            raise
        except Exception as exc:
            raise classify(exc) from exc

    def _delete(self, spec: EventSpec) -> None:
        calendars = {c for c in (spec.previous_calendar_id, spec.calendar_id) if c}
        for calendar_id in sorted(calendars):
            self._delete_from(calendar_id, spec.event_id)

    def _delete_from(self, calendar_id: str, event_id: str) -> None:
        try:
            self._events().delete(calendarId=calendar_id, eventId=event_id).execute()
        except HttpError as exc:
            if _status(exc) not in (404, 410):
                raise

    def _upsert(self, spec: EventSpec) -> None:
        events = self._events()
        previous = spec.previous_calendar_id
        if previous and previous != spec.calendar_id:
            try:
                events.move(
                    calendarId=previous, eventId=spec.event_id, destination=spec.calendar_id
                ).execute()
            except HttpError as exc:
                if _status(exc) not in (404, 410):
                    raise
                # Not there to move (or no move on this endpoint): make sure nothing is left
                # in the old calendar; the upsert below writes it into the new one.
                self._delete_from(previous, spec.event_id)
        if spec.known:
            try:
                self._patch(spec)
                return
            except HttpError as exc:
                if _status(exc) not in (404, 410):
                    raise
        try:
            events.insert(
                calendarId=spec.calendar_id, body={**spec.body, "id": spec.event_id}
            ).execute()
        except HttpError as exc:
            if _status(exc) != 409:
                raise
            # Our own event already exists (an earlier create whose answer was lost, or a
            # deleted event keeping its id): bring it up to date instead.
            self._patch(spec)

    def _patch(self, spec: EventSpec) -> None:
        self._events().patch(
            calendarId=spec.calendar_id, eventId=spec.event_id, body=spec.body
        ).execute()
