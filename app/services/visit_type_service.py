"""Visit types: the kinds of visit a clinic offers, each with its own length."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DuplicateName, InvalidInput
from app.models import VisitType
from app.schemas.visit_type import VisitTypeCreate, VisitTypeUpdate
from app.services.persistence import Conflicts, create_row, get_or_404, update_row
from app.sql import Sql, fetchrow

_UNIQUE: Conflicts = {
    "uq_visit_types_name_lower": (DuplicateName, "A visit type with this name already exists.")
}


async def create(session: AsyncSession, data: VisitTypeCreate) -> VisitType:
    return await create_row(session, VisitType(**data.model_dump()), _UNIQUE)


async def get(session: AsyncSession, visit_type_id: uuid.UUID) -> VisitType:
    return await get_or_404(session, VisitType, visit_type_id, "Visit type")


async def list_all(
    session: AsyncSession, *, is_active: bool | None, limit: int, offset: int
) -> list[VisitType]:
    query = select(VisitType)
    if is_active is not None:
        query = query.where(VisitType.is_active == is_active)
    query = query.order_by(VisitType.name, VisitType.id).limit(limit).offset(offset)
    return list((await session.execute(query)).scalars())


async def update(
    session: AsyncSession, visit_type_id: uuid.UUID, data: VisitTypeUpdate
) -> VisitType:
    visit_type = await get(session, visit_type_id)
    await update_row(session, visit_type, data.model_dump(exclude_unset=True), _UNIQUE)
    return visit_type


async def check_known(session: AsyncSession, ids: Collection[uuid.UUID]) -> None:
    """Refuse (400) a doctor's `visit_type_ids` naming a type that does not exist."""
    if not ids:
        return
    known = set(
        (await session.execute(select(VisitType.id).where(VisitType.id.in_(ids)))).scalars()
    )
    missing = [str(i) for i in ids if i not in known]
    if missing:
        raise InvalidInput("visit_type_ids", f"unknown visit type {', '.join(missing)}")


_NOT_OFFERED = "this visit type does not exist, is inactive, or the doctor does not offer it"


# On the driver, like the availability statements it sits between: a read session's ORM
# statements would check out a second connection for the rest of the request.
_ACTIVE_DURATION = Sql(
    "SELECT duration_minutes FROM visit_types WHERE id = :id AND is_active", standalone=True
)


async def active_duration(session: AsyncSession, visit_type_id: uuid.UUID) -> int:
    """The length of an active visit type; a missing or inactive one is a 400."""
    row = await fetchrow(session, _ACTIVE_DURATION, id=visit_type_id)
    if row is None:
        raise InvalidInput("visit_type_id", _NOT_OFFERED)
    minutes: int = row["duration_minutes"]
    return minutes


def require_offered(offered: Collection[uuid.UUID], visit_type_id: uuid.UUID) -> None:
    if visit_type_id not in offered:
        raise InvalidInput("visit_type_id", _NOT_OFFERED)
