"""What an operator reads: the log of a started service is one JSON object a line, with no
terminal colour fields, no other project's INFO chatter (the MCP SDK's "Terminating session:
None" on every call), and the request id on every line written while serving a request, the
error lines first of all."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.ext.asyncio import AsyncEngine

from app.agent.tools import clinic
from app.logging_setup import configure_logging
from tests.conftest import API_KEY, client_for, make_settings, started_app
from tests.servers import service_processes

OWN = ("app", "uvicorn")


def _lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log, each of which must be one JSON object."""
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


async def _use_the_agent(base: str) -> None:
    headers = {"X-API-Key": API_KEY}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        assert not (await session.call_tool("clinic_info", {})).is_error
        refused = await session.call_tool("get_availability", {"doctor_id": "nope"})
        assert refused.is_error


async def test_a_started_services_log_is_plain_json_without_chatter(
    committed: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        env = {"LOG_LEVEL": "INFO"}
        with service_processes(database_url, 1, API_KEY, env, stderr=sink) as (base,):
            async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as http:
                assert (await http.get("/api/v1/doctors/")).status_code == 200
                assert (await http.post("/api/v1/patients/", json={})).status_code == 400
            await _use_the_agent(base)
    text = log.read_text()
    entries = _lines(text)
    assert "\x1b" not in text, "terminal colour codes"
    assert not [e for e in entries if "color_message" in e]
    assert "Terminating session" not in text
    chatter = [
        e
        for e in entries
        if e["level"] in ("DEBUG", "INFO") and e["logger"].split(".")[0] not in OWN
    ]
    assert not chatter
    # What an operator does want at INFO is still there: the service's own lines and the
    # server's start and stop.
    said = {e["message"] for e in entries}
    assert "service started" in said
    assert any(m.startswith("Uvicorn running on") for m in said)
    assert "Application shutdown complete." in said


def test_other_projects_info_lines_show_at_debug(capfd: pytest.CaptureFixture[str]) -> None:
    try:
        configure_logging("INFO")
        logging.getLogger("mcp.server.streamable_http").info("Terminating session: %s", None)
        logging.getLogger("somelibrary").warning("a library's warning stays")
        logging.getLogger("app.test").info("our own line")
        at_info = [e["message"] for e in _lines(capfd.readouterr().err)]
        assert at_info == ["a library's warning stays", "our own line"]
        configure_logging("DEBUG")
        logging.getLogger("somelibrary").info("chatter, for whoever debugs")
        logging.getLogger("mcp.server.streamable_http").info("Terminating session: %s", None)
        assert [e["message"] for e in _lines(capfd.readouterr().err)] == [
            "chatter, for whoever debugs",
            "Terminating session: None",
        ]
    finally:
        configure_logging("WARNING")


def test_colour_codes_never_reach_a_line(capfd: pytest.CaptureFixture[str]) -> None:
    try:
        configure_logging("INFO")
        logging.getLogger("uvicorn.error").info(
            "Started server process [%d]",
            42,
            extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
        )
        logging.getLogger("app.test").info("\x1b[1mbold\x1b[0m", extra={"note": "\x1b[31mred"})
        entries = _lines(capfd.readouterr().err)
    finally:
        configure_logging("WARNING")
    assert entries[0]["message"] == "Started server process [42]"
    assert "color_message" not in entries[0]
    assert (entries[1]["message"], entries[1]["note"]) == ("bold", "red")


async def _failing_route() -> None:
    raise RuntimeError("a bug")


async def test_error_lines_keep_the_request_id(
    committed: AsyncEngine,
    database_url: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Started here, not in a fixture: its log handler writes to the stderr `capfd` reads.
    app, lifespan = await started_app(make_settings(log_level="INFO"), database_url)
    try:
        app.add_api_route("/api/v1/failing", _failing_route)
        await _fail_over_rest_and_mcp(app, monkeypatch)
    finally:
        await lifespan.__aexit__(None, None, None)
        configure_logging("WARNING")
    errors = [e for e in _lines(capfd.readouterr().err) if e["level"] in ("ERROR", "CRITICAL")]
    assert {e["message"] for e in errors} >= {"unhandled error", "request failed", "tool failed"}
    assert not [e for e in errors if e.get("request_id") not in ("call-7", "call-8")]
    assert {e["request_id"] for e in errors if e["message"] == "tool failed"} == {"call-8"}


async def _fail_over_rest_and_mcp(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    async with client_for(app) as client:
        failed = await client.get("/api/v1/failing", headers={"X-Request-ID": "call-7"})
    assert failed.status_code == 500
    assert failed.headers["x-request-id"] == "call-7" == failed.json()["request_id"]

    # A tool's bug, over MCP: logged where the tool failed, with the request's id.
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in a tool")

    monkeypatch.setattr(clinic.doctor_service, "list_doctors", broken)
    transport = httpx2.ASGITransport(app=app)
    async with (
        httpx2.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"X-API-Key": API_KEY, "X-Request-ID": "call-8"},
        ) as http,
        streamable_http_client("http://test/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("find_doctors", {})
    assert result.is_error
