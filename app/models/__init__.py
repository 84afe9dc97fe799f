"""All mapped tables; importing this package registers them on `Base.metadata`."""

from app.models.appointment import Appointment
from app.models.appointment_event import AppointmentEvent
from app.models.appointment_series import AppointmentSeries
from app.models.base import Base
from app.models.doctor import Doctor
from app.models.doctor_day import DoctorDay
from app.models.doctor_leave import DoctorLeave
from app.models.hold import Hold
from app.models.idempotency_key import IdempotencyKey
from app.models.outbox_job import OutboxJob
from app.models.patient import Patient
from app.models.patient_access import PatientAccess
from app.models.patient_history import PatientHistory
from app.models.reminder import Reminder, ReminderPolicy
from app.models.schedule_override import ClinicHoliday, DoctorDateOverride
from app.models.visit_type import VisitType
from app.models.waitlist import WaitlistEntry, WaitlistOffer
from app.models.webhook import WebhookDelivery, WebhookEndpoint

__all__ = [
    "Appointment",
    "AppointmentEvent",
    "AppointmentSeries",
    "Base",
    "ClinicHoliday",
    "Doctor",
    "DoctorDateOverride",
    "DoctorDay",
    "DoctorLeave",
    "Hold",
    "IdempotencyKey",
    "OutboxJob",
    "Patient",
    "PatientAccess",
    "PatientHistory",
    "Reminder",
    "ReminderPolicy",
    "VisitType",
    "WaitlistEntry",
    "WaitlistOffer",
    "WebhookDelivery",
    "WebhookEndpoint",
]
