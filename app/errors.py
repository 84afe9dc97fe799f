"""Every error a caller can be answered with, each carrying its HTTP status and machine code,
rendered by one handler (`app/error_handlers.py`).

Exceptions that never reach a caller stay with the machinery that raises and catches them: a
mirror delivery's (`services/outbox/delivery.py`), a malformed setting's (`config.py`) and a
failed replica read's (`replica.py`).
"""

from __future__ import annotations

from typing import Any

from app.error_messages import sentence


class ServiceError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.extra}


# The `detail` of a 400 whose `errors` say what is wrong, field by field.
INVALID = "The request is invalid."


class InvalidInput(ServiceError):
    """Input that passed the schema but breaks a rule only the service can check. `detail`
    may say it to a person instead of the generic sentence (a voice agent reads it out)."""

    status_code = 400
    code = "validation_error"

    def __init__(self, field: str, problem: str, *, detail: str = INVALID) -> None:
        """`problem` is said of `field` ("must be a UUID": "doctor_id must be a UUID");
        `detail`: a sentence for the caller when the generic one would not do."""
        message = sentence(field, problem)
        super().__init__(detail, extra={"errors": [{"field": field, "message": message}]})


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"

    @classmethod
    def of(cls, what: str, key: object) -> NotFound:
        """The sentence a missing row gets: `Doctor 3f2a... was not found.`"""
        return cls(f"{what} {key} was not found.")


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class DuplicateEmail(Conflict):
    code = "duplicate_email"


class DuplicateMobile(Conflict):
    code = "duplicate_mobile"


class DuplicateName(Conflict):
    code = "duplicate_name"


class LeaveOverlap(Conflict):
    code = "leave_overlap"


class SlotUnavailable(Conflict):
    code = "slot_unavailable"


class InvalidState(Conflict):
    code = "invalid_state"


class IdempotencyKeyReused(ServiceError):
    status_code = 422
    code = "idempotency_key_reused"


class RateLimited(ServiceError):
    status_code = 429
    code = "rate_limited"


class DatabaseUnavailable(ServiceError):
    status_code = 503
    code = "database_unavailable"
