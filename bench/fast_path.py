"""The service with a hand-written route for one doctor's availability, for `make bench` only.

The service serves every operation with ordinary FastAPI routes. This factory adds, in front of
the documented availability route, one that takes only the `Request` and reads its path and
query itself, calling the same service. `make bench` measures both in the same run
(`availability_1d` and `availability_1d_hand_parsed`), which is what a hand-written fast path
would buy (BENCHMARKS.md).
"""

from __future__ import annotations

import uuid

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute

from app.database import read_session
from app.main import create_app as create_service
from app.routes.appointment import availability_response
from app.routes.deps import clinic_of
from app.schemas.common import parse_calendar_date
from app.security import require_api_key
from app.services import availability_service


async def _availability(request: Request) -> Response:
    doctor_id = uuid.UUID(request.path_params["doctor_id"])
    query = request.query_params
    dates = [
        parse_calendar_date(query[name]) if name in query else None
        for name in ("date", "start_date", "end_date")
    ]
    settings = request.app.state.settings
    clinic = clinic_of(settings)
    first, last = availability_service.resolve_range(clinic.today, *dates)
    result = await availability_service.doctor_availability(
        read_session(request), doctor_id, first, last, clinic, request.app.state.day_cache
    )
    return availability_response(result, settings.clinic_timezone)


def create_app() -> FastAPI:
    app = create_service()
    route = APIRoute(
        "/api/v1/appointments/availability/{doctor_id}",
        _availability,
        methods=["GET"],
        dependencies=[Depends(require_api_key)],
        include_in_schema=False,
    )
    app.router.routes.insert(0, route)
    return app
