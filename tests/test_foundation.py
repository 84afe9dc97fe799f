"""Settings, migrations, auth on every route, error shapes, request ids, log masking."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import uuid

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import SettingsError, load_settings
from app.logging_setup import JsonFormatter, mask
from app.models import Base
from tests.conftest import OTHER_KEY, client_for


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CLINIC_TIMEZONE", "Mars/Olympus"),
        ("PORT", "eighty"),
        ("DATABASE_URL", "mysql://x"),
        ("DEFAULT_PHONE_REGION", "XX"),
        ("LOG_LEVEL", "LOUD"),
        ("SERVICE_API_KEY", "short"),
    ],
)
def test_malformed_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^invalid setting {variable}: "):
        load_settings()


def test_malformed_setting_stops_start_with_one_line(tmp_path: object) -> None:
    env = {**os.environ, "CLINIC_TIMEZONE": "Nowhere/City"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["invalid setting CLINIC_TIMEZONE: unknown IANA time zone 'Nowhere/City'"]


def _api_routes(app: FastAPI) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/v1")
        for method in operations
    ]


async def test_every_api_route_requires_a_valid_key(app: FastAPI) -> None:
    routes = _api_routes(app)
    assert len(routes) >= 20
    some_id = str(uuid.uuid4())
    for key in (None, "wrong-key-value"):
        async with client_for(app, key) as anonymous:
            for method, path in routes:
                url = path
                for name in ("doctor_id", "patient_id", "appointment_id", "leave_id"):
                    url = url.replace("{" + name + "}", some_id)
                url = url.replace("{mobile_number}", "+14155552671")
                response = await anonymous.request(method, url, json={})
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["code"] == "unauthorized"


async def test_rotation_keys_both_work_and_probes_are_open(app: FastAPI) -> None:
    async with client_for(app, OTHER_KEY) as other:
        assert (await other.get("/api/v1/doctors/")).status_code == 200
    async with client_for(app, None) as anonymous:
        assert (await anonymous.get("/health")).json() == {"status": "ok"}
        ready = await anonymous.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert ready.json()["calendar_sync"] == "disabled"
        assert (await anonymous.get("/openapi.json")).status_code == 200


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Request-ID": "call-42"})
    assert given.headers["X-Request-ID"] == "call-42"
    generated = await client.get("/api/v1/doctors/")
    assert len(generated.headers["X-Request-ID"]) == 32


async def test_validation_errors_are_400_with_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/doctors/", json={"name": ""})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    fields = {e["field"] for e in body["errors"]}
    assert {"name", "email", "working_days"} <= fields

    bad_json = await client.post(
        "/api/v1/doctors/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert (await client.get("/api/v1/doctors/not-a-uuid")).status_code == 400
    assert (await client.get("/api/v1/doctors/?limit=0")).status_code == 400
    assert (await client.get("/api/v1/doctors/?limit=501")).status_code == 400
    assert (await client.get("/api/v1/doctors/?offset=-1")).status_code == 400


async def test_unknown_route_and_id_are_404(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"/api/v1/doctors/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    nowhere = await client.get("/api/v1/nowhere")
    assert nowhere.status_code == 404
    assert set(nowhere.json()) == {"detail", "code"}


async def test_unexpected_error_is_500_with_request_id(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    async with client_for(app, None) as anonymous:
        with caplog.at_level(logging.ERROR):
            response = await anonymous.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "secret internals" not in response.text
    assert any(r.exc_info for r in caplog.records)


def test_logs_mask_phones_and_emails() -> None:
    masked = mask("patient +91 98765 43210 <jane.doe@mail.example> on 2026-11-25")
    assert "98765" not in masked and "jane.doe" not in masked
    assert "2026-11-25" in masked and "***@mail.example" in masked
    record = logging.LogRecord("t", logging.INFO, "", 0, "call from %s", ("+14155552671",), None)
    assert "4155552671" not in JsonFormatter().format(record)


def test_env_example_lists_every_setting() -> None:
    from pathlib import Path

    from app.config import Settings

    listed = set(re.findall(r"^([A-Z_]+)=", Path(".env.example").read_text(), re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


async def test_nul_characters_are_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    body = await client.post(
        "/api/v1/patients/", json={"name": "A\x00B", "mobile_number": "+14155552671"}
    )
    assert body.status_code == 400
    assert body.json()["errors"][0]["field"] == "name"
    query = await client.get("/api/v1/doctors/", params={"name": "x\x00"})
    assert query.status_code == 400
    assert query.json()["code"] == "validation_error"
    assert (await client.get("/api/v1/doctors/")).json() == []


async def test_cors_only_for_configured_origins(
    connection: AsyncConnection, database_url: str
) -> None:
    from tests.conftest import make_settings, started_app

    app, lifespan = await started_app(
        make_settings(cors_origins="https://desk.clinic.example"), database_url, connection
    )
    try:
        async with client_for(app, None) as browser:
            allowed = await browser.options(
                "/api/v1/doctors/",
                headers={
                    "Origin": "https://desk.clinic.example",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "X-API-Key",
                },
            )
            other = await browser.get("/health", headers={"Origin": "https://evil.example"})
    finally:
        await lifespan.__aexit__(None, None, None)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://desk.clinic.example"
    assert "access-control-allow-origin" not in other.headers


def test_generated_key_is_kept_and_reused(tmp_path: object) -> None:
    from pathlib import Path

    from app.launcher import ensure_api_key
    from tests.conftest import make_settings

    settings = make_settings(service_api_key=None, data_dir=Path(str(tmp_path)))
    first, generated = ensure_api_key(settings)
    again, _ = ensure_api_key(settings)
    assert generated and first == again and len(first) >= 32
    assert (Path(str(tmp_path)) / "api_key").stat().st_mode & 0o777 == 0o600
