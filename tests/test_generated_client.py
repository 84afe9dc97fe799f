"""An integrator's first hour: `make client` generates a typed Python client from the service's
OpenAPI document (openapi-python-client, pinned in requirements-dev.txt, tidied by the pinned
ruff, nothing downloaded), and that client drives a started service: a booking, the typed 409
with its `reason` and `alternatives`, a reschedule and a search."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY, OTHER_KEY
from tests.factories import booking_payload, doctor_payload, next_weekday
from tests.servers import service_processes

ROOT = Path(__file__).resolve().parents[1]
DEV_STAMP = ".venv/.installed-dev"


@pytest.fixture(scope="module")
def clinic_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package `make client` generates, imported from a temporary directory."""
    where = tmp_path_factory.mktemp("client")
    out, document = where / "clinic-client", where / "openapi.json"
    # `-o` takes the development install as done: this suite already runs on it.
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            DEV_STAMP,
            "client",
            f"CLIENT_DIR={out}",
            f"OPENAPI_DOCUMENT={document}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "WARNING" not in result.stdout, result.stdout
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("clinic_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.split(".")[0] == "clinic_client"]:
            del sys.modules[name]


def _operation(package: ModuleType, tag: str, operation_id: str) -> Any:
    """The generated module of one operation (`sync`, `sync_detailed`, ...)."""
    return importlib.import_module(f"{package.__name__}.api.{tag}.{operation_id}")


def _model(package: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{package.__name__}.models"), name)


def test_the_generated_functions_read_naturally(clinic_client: ModuleType) -> None:
    appointments = Path(clinic_client.__file__).parent / "api" / "appointments"
    names = {path.stem for path in appointments.glob("*.py")} - {"__init__"}
    assert {"book_appointment", "get_availability", "find_earliest_slots"} <= names
    assert {"reschedule_appointment", "cancel_appointment"} <= names
    assert not [name for name in names if "api_v1" in name]


def test_a_typed_client_books_is_refused_reschedules_and_searches(
    clinic_client: ModuleType, committed: AsyncEngine, database_url: str
) -> None:
    keys = f"agent:{API_KEY},admin:{OTHER_KEY}"
    with service_processes(database_url, 1, API_KEY, {"SERVICE_API_KEY": keys}) as (url,):
        admin = clinic_client.Client(base_url=url, headers={"X-API-Key": OTHER_KEY})
        agent = clinic_client.Client(base_url=url, headers={"X-API-Key": API_KEY})
        create_doctor = _operation(clinic_client, "doctors", "create_doctor")
        get_availability = _operation(clinic_client, "appointments", "get_availability")
        book_appointment = _operation(clinic_client, "appointments", "book_appointment")
        reschedule = _operation(clinic_client, "appointments", "reschedule_appointment")
        find_earliest_slots = _operation(clinic_client, "appointments", "find_earliest_slots")
        DoctorCreate = _model(clinic_client, "DoctorCreate")
        AppointmentCreate = _model(clinic_client, "AppointmentCreate")
        RescheduleRequest = _model(clinic_client, "RescheduleRequest")
        AppointmentRead = _model(clinic_client, "AppointmentRead")
        SlotUnavailableBody = _model(clinic_client, "SlotUnavailableBody")

        payload = doctor_payload(specialization="Dermatology")
        doctor = create_doctor.sync(client=admin, body=DoctorCreate.from_dict(payload))
        assert doctor.name == payload["name"] and isinstance(doctor.id, uuid.UUID)

        day = next_weekday(1)
        availability = get_availability.sync(doctor_id=doctor.id, client=agent, date=day)
        assert availability.days[0].slots[0].start_time == "09:00"

        booking = booking_payload(str(doctor.id), day, "10:00")
        booked = book_appointment.sync(client=agent, body=AppointmentCreate.from_dict(booking))
        assert isinstance(booked, AppointmentRead), booked
        assert booked.start_time == "10:00" and booked.date == day

        refused = book_appointment.sync_detailed(
            client=agent,
            body=AppointmentCreate.from_dict(booking_payload(str(doctor.id), day, "10:00")),
        )
        assert refused.status_code == 409
        assert isinstance(refused.parsed, SlotUnavailableBody)
        assert refused.parsed.code == "slot_unavailable"
        assert refused.parsed.reason.value == "taken"
        starts = [(s.date, s.start_time) for s in refused.parsed.alternatives]
        assert starts and starts == sorted(starts)
        assert {"09:30", "10:30"} <= {start for _, start in starts}

        moved = reschedule.sync(
            appointment_id=booked.id,
            client=agent,
            body=RescheduleRequest.from_dict({"date": day.isoformat(), "start_time": "11:00"}),
        )
        assert isinstance(moved, AppointmentRead), moved
        assert moved.id == booked.id and moved.start_time == "11:00"
        assert moved.status.value == "RESCHEDULED"

        found = find_earliest_slots.sync(
            client=agent, specialization="Dermatology", start_date=day, end_date=day, limit=3
        )
        assert [(f.doctor_id, f.date, f.start_time) for f in found] == [
            (doctor.id, day, "09:00"),
            (doctor.id, day, "09:30"),
            (doctor.id, day, "10:00"),  # freed by the reschedule
        ]
        assert all(isinstance(f.date, dt.date) for f in found)
