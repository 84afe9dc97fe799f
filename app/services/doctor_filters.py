"""Which doctors a search means: the one home of the doctor filters (list and slot search)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Self

from app.schemas.arguments import given_id


@dataclass(frozen=True, slots=True)
class DoctorFilters:
    """Text filters match ignoring case and surrounding spaces; `name` is a substring."""

    specialization: str | None = None
    language: str | None = None
    consultation_type: str | None = None
    is_active: bool | None = None
    clinic_id: uuid.UUID | None = None
    name: str | None = None
    visit_type_id: uuid.UUID | None = None  # doctors offering this visit type
    doctor_id: uuid.UUID | None = None

    @classmethod
    def bookable(
        cls,
        *,
        specialization: str | None,
        language: str | None,
        consultation_type: str | None,
        visit_type_id: str | None,
        doctor_id: str | None = None,
        name: str | None = None,
    ) -> Self:
        """The doctors a caller looking for an appointment means: active ones only, matching
        the filters given as text (by a query or a tool; a malformed id is a 400 naming it).
        The slot search over REST and MCP, and the agent's doctor search."""
        return cls(
            specialization=specialization,
            language=language,
            consultation_type=consultation_type,
            is_active=True,
            name=name,
            visit_type_id=given_id(visit_type_id, "visit_type_id"),
            doctor_id=given_id(doctor_id, "doctor_id"),
        )

    def where(self, table: str) -> tuple[str, dict[str, object]]:
        """The filters as one SQL predicate on `table` (a table name or alias), with its
        `:named` parameters; `true` when nothing is filtered."""
        clauses: list[str] = []
        params: dict[str, object] = {}
        if self.specialization:
            clauses.append(f"lower({table}.specialization) = :specialization")
            params["specialization"] = self.specialization.strip().lower()
        if self.consultation_type:
            clauses.append(f"lower({table}.consultation_type) = :consultation_type")
            params["consultation_type"] = self.consultation_type.strip().lower()
        if self.language:
            clauses.append(
                f"EXISTS (SELECT 1 FROM unnest({table}.languages) AS spoken(language)"
                " WHERE lower(spoken.language) = :language)"
            )
            params["language"] = self.language.strip().lower()
        if self.is_active is not None:
            clauses.append(f"{table}.is_active = :is_active")
            params["is_active"] = self.is_active
        if self.clinic_id is not None:
            clauses.append(f"{table}.clinic_id = :clinic_id")
            params["clinic_id"] = self.clinic_id
        if self.name:
            escaped = self.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(f"{table}.name ILIKE :name ESCAPE '\\'")
            params["name"] = f"%{escaped}%"
        if self.visit_type_id is not None:
            clauses.append(f":visit_type_id = ANY({table}.visit_type_ids)")
            params["visit_type_id"] = self.visit_type_id
        if self.doctor_id is not None:
            clauses.append(f"{table}.id = :doctor_id")
            params["doctor_id"] = self.doctor_id
        return " AND ".join(clauses) or "true", params
