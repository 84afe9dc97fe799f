"""Patients, found by id or by any spelling of their mobile number, and their history."""

from __future__ import annotations

import functools
import uuid

import phonenumbers
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DuplicateMobile, InvalidInput, NotFound
from app.models import Patient, PatientHistory
from app.schemas.patient import HistoryCreate, PatientCreate, PatientUpdate
from app.services.persistence import Conflicts, create_row, get_or_404, update_row

_UNIQUE: Conflicts = {
    "ix_patients_mobile_number": (
        DuplicateMobile,
        "A patient with this mobile number already exists.",
    )
}


# Said to a caller whose number lacks its country code while no default region is set.
ASK_FOR_COUNTRY_CODE = "Please give the number with its country code."
_NO_COUNTRY_CODE = "include the country code (e.g. +14155550123); no default region is set"


def normalise_mobile(raw: str, default_region: str | None, field: str = "mobile_number") -> str:
    """A mobile number in E.164, so any spelling of a number finds the same patient."""
    e164, problem = _e164(raw.strip(), default_region)
    if problem == _NO_COUNTRY_CODE:
        raise InvalidInput(field, problem, detail=ASK_FOR_COUNTRY_CODE)
    if problem is not None:
        raise InvalidInput(field, problem)
    assert e164 is not None
    return e164


# Parsing is the costliest step of a booking for a known caller, and the same caller's number
# comes again within a call (found, then booked) and across calls.
@functools.lru_cache(maxsize=4096)
def _e164(text: str, default_region: str | None) -> tuple[str | None, str | None]:
    """(the number in E.164, None), or (None, what is wrong with it)."""
    if default_region is None and text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and default_region is None:
        return None, _NO_COUNTRY_CODE
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        return None, f"not a phone number: {exc}"
    if not phonenumbers.is_possible_number(number):
        return None, "not a possible phone number"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


async def create_patient(
    session: AsyncSession, data: PatientCreate, default_region: str | None
) -> Patient:
    patient = Patient(
        name=data.name,
        mobile_number=normalise_mobile(data.mobile_number, default_region),
        email=str(data.email).lower() if data.email else None,
        gender=data.gender,
        date_of_birth=data.date_of_birth,
    )
    return await create_row(session, patient, _UNIQUE)


async def get_patient(session: AsyncSession, patient_id: uuid.UUID) -> Patient:
    return await get_or_404(session, Patient, patient_id, "Patient")


async def get_patient_by_mobile(
    session: AsyncSession, mobile: str, default_region: str | None
) -> Patient:
    normalised = normalise_mobile(mobile, default_region)
    query = select(Patient).where(Patient.mobile_number == normalised)
    patient = (await session.execute(query)).scalar_one_or_none()
    if patient is None:
        raise NotFound("No patient has this mobile number.")
    return patient


async def update_patient(
    session: AsyncSession, patient_id: uuid.UUID, data: PatientUpdate, default_region: str | None
) -> Patient:
    patient = await get_patient(session, patient_id)
    changes = data.model_dump(exclude_unset=True)
    if data.mobile_number is not None:
        changes["mobile_number"] = normalise_mobile(data.mobile_number, default_region)
    if data.email is not None:
        changes["email"] = str(data.email).lower()
    await update_row(session, patient, changes, _UNIQUE)
    return patient


async def add_history(
    session: AsyncSession, patient_id: uuid.UUID, data: HistoryCreate
) -> PatientHistory:
    await get_patient(session, patient_id)
    entry = PatientHistory(
        patient_id=patient_id,
        symptoms=data.symptoms,
        medical_conditions=list(data.medical_conditions),
        allergies=list(data.allergies),
        notes=data.notes,
    )
    return await create_row(session, entry)


async def list_history(
    session: AsyncSession, patient_id: uuid.UUID, *, limit: int, offset: int
) -> list[PatientHistory]:
    await get_patient(session, patient_id)
    query = (
        select(PatientHistory)
        .where(PatientHistory.patient_id == patient_id)
        .order_by(PatientHistory.created_at.desc(), PatientHistory.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(query)).scalars())
