"""The front desk: its day view in JSON (`GET /api/v1/desk/day`) and the page that shows it
(`/desk`), a static page served by the service itself.

The page is four files under `app/static/desk/` (its icon among them), with no build step;
they are sent with a Content-Security-Policy that lets them load and call nothing but this
origin. Its actions use
the same JSON API as every other client, with the key the person typed (kept in the tab's
session storage only).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.database import ReadSessionDep
from app.models.enums import ConfirmationStatus
from app.routes.deps import ClinicDep, SettingsDep, error_responses
from app.schemas.appointment import AppointmentRead, Slot
from app.schemas.common import CalendarDate
from app.schemas.desk import DeskAppointment, DeskColumn, DeskDay
from app.security import Role, allow
from app.services import front_desk_service

router = APIRouter(prefix="/desk", tags=["front desk"])
page_router = APIRouter(include_in_schema=False)


@router.get("/day", dependencies=[allow(*Role)], responses=error_responses())
async def get_desk_day(
    session: ReadSessionDep,
    clinic: ClinicDep,
    settings: SettingsDep,
    date: Annotated[CalendarDate | None, Query()] = None,
    confirmation_status: ConfirmationStatus | None = None,
) -> DeskDay:
    """One day at the front desk (default: the clinic's today): a column per active doctor
    with the day's appointments of every status (with the patient's name; only those of
    `confirmation_status` when given) and the free slots availability offers."""
    day = date or clinic.today
    columns = await front_desk_service.desk_day(session, day, clinic, confirmation_status)
    return DeskDay(
        date=day,
        today=clinic.today,
        now=clinic.now.time().replace(second=0, microsecond=0),
        timezone=settings.clinic_timezone,
        doctors=[
            DeskColumn(
                doctor_id=column.doctor_id,
                doctor_name=column.doctor_name,
                visit_type_ids=column.visit_type_ids,
                unavailable_reason=column.day.unavailable_reason,
                appointments=[
                    DeskAppointment(
                        **AppointmentRead.model_validate(visit.appointment).model_dump(),
                        patient_name=visit.patient_name,
                        patient_mobile_number=visit.patient_mobile_number,
                    )
                    for visit in column.visits
                ],
                free_slots=[Slot(start_time=s.start, end_time=s.end) for s in column.day.slots],
            )
            for column in columns
        ],
    )


# Only this origin, for everything; no inline script or style, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # A new release must reach the desk at the next load, not after a browser's guess.
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "desk.js": "text/javascript; charset=utf-8",
    "desk.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


@cache
def _asset(name: str) -> bytes:
    return (resources.files("app") / "static" / "desk" / name).read_bytes()


def _page_file(name: str) -> Response:
    return Response(_asset(name), media_type=_MEDIA_TYPES[name], headers=_PAGE_HEADERS)


@page_router.get("/desk")
async def desk_page() -> Response:
    return _page_file("index.html")


@page_router.get("/desk/desk.js")
async def desk_script() -> Response:
    return _page_file("desk.js")


@page_router.get("/desk/desk.css")
async def desk_style() -> Response:
    return _page_file("desk.css")


@page_router.get("/desk/favicon.svg")
async def desk_icon() -> Response:
    return _page_file("favicon.svg")
