"""Schemathesis against the service's own OpenAPI schema, with each role's key and with a wrong
one: no 5xx, no response that breaks its declared schema, no undeclared status code (a role's
403 is declared where the operation's roles exclude it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.servers import service_processes

KEYS = {"admin": "fuzz-admin-key", "agent": "fuzz-agent-key", "readonly": "fuzz-readonly-key"}

CHECKS = ",".join(
    [
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
    ]
)


@pytest.mark.parametrize("key", [*KEYS.values(), "wrong-key-value"])
def test_schemathesis_finds_nothing(committed: AsyncEngine, database_url: str, key: str) -> None:
    cli = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    keys = ",".join(f"{role}:{secret}:{role}" for role, secret in KEYS.items())
    with service_processes(database_url, 1, key, {"SERVICE_API_KEY": keys}) as (url,):
        result = subprocess.run(
            [
                cli,
                "run",
                f"{url}/openapi.json",
                "--checks",
                CHECKS,
                "--header",
                f"X-API-Key: {key}",
                "--max-examples",
                "25",
                "--seed",
                "20261124",
                "--request-timeout",
                "10",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout
