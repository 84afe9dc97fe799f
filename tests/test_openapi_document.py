"""/openapi.json as an integrator's tools read it: a valid OpenAPI 3.1 document whose operation
ids are plain snake_case names (the generated clients' function names) and whose parameters
carry only real formats."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

ROOT = Path(__file__).resolve().parents[1]
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# JSON Schema's own formats, and OpenAPI's; anything else (`"format": "string"`) is shown by
# Swagger UI as `string($string)`.
KNOWN_FORMATS = {
    "date",
    "date-time",
    "time",
    "duration",
    "email",
    "uri",
    "uuid",
    "int32",
    "int64",
    "float",
    "double",
    "password",
    "binary",
}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _formats(node: Any, where: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        found = [(where, node["format"])] if isinstance(node.get("format"), str) else []
        return found + [f for key, value in node.items() for f in _formats(value, f"{where}/{key}")]
    if isinstance(node, list):
        return [f for i, value in enumerate(node) for f in _formats(value, f"{where}[{i}]")]
    return []


async def test_the_document_is_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json", headers={"X-API-Key": ""})
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)  # raises on the first violation


async def test_every_operation_id_is_a_unique_snake_case_name(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    ids = {(method, path): op["operationId"] for method, path, op in _operations(document)}
    assert len(ids) > 40
    bad = {where: name for where, name in ids.items() if not SNAKE_CASE.fullmatch(name)}
    assert not bad
    assert len(set(ids.values())) == len(ids), "operation ids repeat"
    # Nothing of FastAPI's default (`book_appointment_api_v1_appointments__post`) is left.
    assert not [name for name in ids.values() if "api_v1" in name or name.endswith("_get")]
    assert ids[("POST", "/api/v1/appointments/")] == "book_appointment"
    assert ids[("GET", "/api/v1/appointments/availability/{doctor_id}")] == "get_availability"
    assert ids[("GET", "/api/v1/appointments/availability")] == "find_earliest_slots"
    assert ids[("PUT", "/api/v1/appointments/{appointment_id}/reschedule")] == (
        "reschedule_appointment"
    )
    # A function that serves PUT and PATCH documents each under a name of its own.
    assert ids[("PUT", "/api/v1/doctors/{doctor_id}")] == "update_doctor"
    assert ids[("PATCH", "/api/v1/doctors/{doctor_id}")] == "patch_doctor"
    assert ids[("GET", "/ready")] == "check_readiness"


async def test_parameters_have_only_real_formats(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    unknown = [(where, f) for where, f in _formats(document) if f not in KNOWN_FORMATS]
    assert not unknown
    search = next(
        op
        for method, path, op in _operations(document)
        if op["operationId"] == "find_earliest_slots"
    )
    specialization = next(p for p in search["parameters"] if p["name"] == "specialization")
    assert specialization["schema"] == {"type": "string"}


def test_the_offline_command_writes_the_served_document(tmp_path: Path) -> None:
    """`python -m app openapi` (what `make client` reads) needs no database and no key."""
    output = tmp_path / "openapi.json"
    result = subprocess.run(
        [sys.executable, "-m", "app", "openapi", "--output", str(output)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(output.read_text())
    validate(document, cls=OpenAPIV31SpecValidator)
    assert "book_appointment" in {op["operationId"] for _, _, op in _operations(document)}
    assert not (tmp_path / "data").exists(), "no key or database was made for the document"
