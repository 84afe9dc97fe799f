"""Schemathesis against the service's own OpenAPI schema, with a valid key and with none:
no 5xx, no response that breaks its declared schema, no undeclared status code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import API_KEY
from tests.servers import service_processes

CHECKS = ",".join(
    [
        "not_a_server_error",
        "response_schema_conformance",
        "status_code_conformance",
        "content_type_conformance",
    ]
)


@pytest.mark.parametrize("header", [f"X-API-Key: {API_KEY}", "X-API-Key: wrong-key-value"])
def test_schemathesis_finds_nothing(committed: AsyncEngine, database_url: str, header: str) -> None:
    cli = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    with service_processes(database_url, 1, API_KEY) as (url,):
        result = subprocess.run(
            [
                cli,
                "run",
                f"{url}/openapi.json",
                "--checks",
                CHECKS,
                "--header",
                header,
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
