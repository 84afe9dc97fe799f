"""The patient access log: every answer that showed a patient's record or history, written in
the same transaction as the read (an answer that could not be logged is not given)."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.logging_setup import request_id_var
from app.models import PatientAccess
from app.services.context import Caller

Shown = Literal["record", "history"]


async def record(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, what: Shown, via: str
) -> None:
    """`via` names the operation that answered (`get_patient`, `mcp find_patient`)."""
    await session.execute(
        insert(PatientAccess).values(
            patient_id=patient_id,
            actor=caller.actor,
            what=what,
            via=via,
            correlation_id=caller.correlation_id,
            request_id=request_id_var.get(),
        )
    )


async def list_for_patient(
    session: AsyncSession, patient_id: uuid.UUID, *, limit: int, offset: int
) -> list[PatientAccess]:
    """Newest first."""
    query = (
        select(PatientAccess)
        .where(PatientAccess.patient_id == patient_id)
        .order_by(PatientAccess.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(query)).scalars())
