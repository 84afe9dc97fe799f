"""API keys as their holders meet them: `GET /me`, the generated key shown once (later starts
name its file), and a malformed `SERVICE_API_KEY` refused naming the entry, never a secret."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from app import launcher
from app.config import SettingsError, load_settings
from app.security import parse_api_keys
from tests.conftest import client_for, make_settings, started_app

KEYS = {"desk": "desk-secret-1", "phone": "phone-secret-1", "dashboard": "dash-secret-1"}
SERVICE_API_KEY = (
    f"desk:{KEYS['desk']}:admin,phone:{KEYS['phone']}:agent,"
    f"dashboard:{KEYS['dashboard']}:readonly,bare-secret-1"
)


@pytest.fixture
async def app(connection: AsyncConnection, database_url: str) -> AsyncIterator[FastAPI]:
    settings = make_settings(service_api_key=SERVICE_API_KEY)
    app, lifespan = await started_app(settings, database_url, connection)
    yield app
    await lifespan.__aexit__(None, None, None)


async def test_me_is_the_keys_name_and_role(app: FastAPI) -> None:
    expected = {
        KEYS["desk"]: {"name": "desk", "role": "admin"},
        KEYS["phone"]: {"name": "phone", "role": "agent"},
        KEYS["dashboard"]: {"name": "dashboard", "role": "readonly"},
        "bare-secret-1": {"name": "default", "role": "admin"},
    }
    for secret, body in expected.items():
        async with client_for(app, secret) as client:
            response = await client.get("/api/v1/me")
        assert (response.status_code, response.json()) == (200, body)
    async with client_for(app, "wrong-secret") as client:
        assert (await client.get("/api/v1/me")).status_code == 401
    async with client_for(app, None) as client:
        assert (await client.get("/api/v1/me")).status_code == 401


def test_the_generated_key_is_printed_once_then_its_file(
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `prepare` exports what the workers read; keep this process's environment as it was.
    for name in ("DATABASE_URL", "SERVICE_API_KEY"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    settings = make_settings(service_api_key=None, data_dir=tmp_path, database_url=database_url)

    launcher.prepare(settings)
    first = capsys.readouterr().out
    key = (tmp_path / "api_key").read_text().strip()
    # The line `.ci/run` reads the key from.
    assert f"API key (send as X-API-Key): {key}\n" in first

    launcher.prepare(settings)
    later = capsys.readouterr().out
    assert key not in later
    assert f"API key: the one kept in {(tmp_path / 'api_key').resolve()}" in later

    configured = make_settings(
        service_api_key="ops:configured-secret", data_dir=tmp_path, database_url=database_url
    )
    launcher.prepare(configured)
    assert "API key" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("desk:desk-secret-1,phone:short:agent", "entry 2: the secret needs 8+ characters"),
        ("desk:desk-secret-1,,abc", "entry 3: the secret needs 8+ characters"),
        (":orphan-secret-1", "entry 1 has an empty name"),
        ("a:b:c:d-secret-1", "entry 1 is not `name:secret:role`"),
        ("desk:desk-secret-1,phone:desk-secret-1:agent", "entry 2 repeats the secret"),
        ("desk:desk-secret-1:root", "entry 1 (key 'desk') has an unknown role 'root'"),
    ],
)
def test_a_bad_key_is_named_by_its_entry_never_its_secret(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as found:
        parse_api_keys(raw)
    for secret in ("desk-secret-1", "orphan-secret-1", "d-secret-1", "short"):
        assert secret not in str(found.value)


def test_the_start_stops_with_one_line_naming_the_setting_and_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SERVICE_API_KEY", "desk:desk-secret-1,phone:tiny")
    with pytest.raises(SettingsError) as found:
        load_settings()
    assert str(found.value) == (
        "invalid setting SERVICE_API_KEY: entry 2: the secret needs 8+ characters"
    )
    assert "tiny" not in str(found.value)
