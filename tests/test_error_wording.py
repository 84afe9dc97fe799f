"""Every 400 speaks the project's words: each error names its field in a sentence of ours
("name is required"), never pydantic's ("Field required", "Input should be a valid
dictionary or object to extract fields from"). Swept over every operation of the OpenAPI
document: each body malformed as a whole and field by field, each query and path parameter
given a value of the wrong kind."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, OTHER_KEY

# Pydantic's and FastAPI's own phrasings (pydantic_core's error messages), none of which may
# reach a caller.
PYDANTIC = re.compile(
    r"Field required|Input should|String should|List should|Tuple should|Dictionary should"
    r"|Value error|Assertion failed|Extra inputs|JSON decode error|Invalid JSON|Unable to"
    r"|value is not a valid|should have at (least|most)|Decimal input|Value should"
    r"|URL input should|UUID input should|Object has no attribute|unable to parse"
    r"|Input is too|Data should|Timezone|Date should|Datetime should|Time should",
    re.IGNORECASE,
)
NOWHERE = str(uuid.UUID(int=7))
NO_BODY = object()  # a probe of a parameter sends no body; `None` is a JSON null


@dataclass
class Probe:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = NO_BODY
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _kinds(schema: dict[str, Any], document: dict[str, Any]) -> set[str]:
    schema = _resolve(document, schema)
    options = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return {_resolve(document, o).get("type", "object") for o in options} - {"null"}


def _wrong_values(schema: dict[str, Any], document: dict[str, Any]) -> list[Any]:
    """Values that do not fit `schema`, of other kinds and of its own kind."""
    kinds = _kinds(schema, document)
    wrong: list[Any] = [
        value
        for kind, value in (
            ("string", 12345),
            ("string", ["a", "list"]),
            ("integer", "twelve"),
            ("integer", 1.5),
            ("boolean", "maybe"),
            ("array", "not a list"),
            ("object", "not an object"),
            ("object", [1, 2]),
        )
        if kind in kinds
    ]
    resolved = _resolve(document, schema)
    if "string" in kinds:
        wrong += ["\x00bad", "x" * 5000, "2026-13-45", "25:99", "not-an-email@", "nope"]
    if "integer" in kinds:
        wrong += [-1, 10**12]
    if "enum" in resolved or "array" in kinds:
        wrong += [["bogus"], "bogus"]
    return wrong


def _with_ids(path: str) -> str:
    return re.sub(r"\{date\}", "2031-01-06", re.sub(r"\{[a-z_]+_id\}", NOWHERE, path))


def probes(document: dict[str, Any]) -> Iterator[Probe]:
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            path = _with_ids(template)
            for parameter in operation.get("parameters", []):
                where, name = parameter["in"], parameter["name"]
                for value in _wrong_values(parameter["schema"], document):
                    if isinstance(value, list | dict):
                        continue
                    text = str(value).lower() if isinstance(value, bool) else str(value)
                    if where == "query":
                        yield Probe(method, path, params={name: text})
                    elif where == "path" and "\x00" not in text:
                        yield Probe(method, template.replace(f"{{{name}}}", text))
                    elif where == "header" and name.lower() != "x-api-key":
                        yield Probe(method, path, headers={name: "x" * 300})
            if "requestBody" not in operation:
                continue
            schema = _resolve(
                document, operation["requestBody"]["content"]["application/json"]["schema"]
            )
            for whole in ({}, [], "text", 5, None, {"unknown_field": 1}):
                yield Probe(method, path, body=whole)
            yield Probe(method, path, raw=b'{"name": ')
            yield Probe(method, path, raw=b"")
            for name, prop in schema.get("properties", {}).items():
                for value in _wrong_values(prop, document):
                    yield Probe(method, path, body={name: value})
                nested = _resolve(document, prop)
                for inner in nested.get("properties", {}):
                    yield Probe(method, path, body={name: {inner: 12345}})
                if nested.get("properties"):
                    yield Probe(method, path, body={name: {}})


def _names_its_field(error: dict[str, str]) -> bool:
    parts = [p for p in error["field"].split(".") if not p.isdigit()]
    named = parts[-1] if parts else "body"
    return named in error["message"] or (named == "body" and bool(error["message"]))


async def _send(client: httpx.AsyncClient, probe: Probe, key: str) -> httpx.Response:
    headers = {"X-API-Key": key, **probe.headers}
    if probe.raw is not None:
        headers["Content-Type"] = "application/json"
        return await client.request(
            probe.method, probe.path, params=probe.params, content=probe.raw, headers=headers
        )
    body = {} if probe.body is NO_BODY else {"json": probe.body}
    return await client.request(
        probe.method, probe.path, params=probe.params, headers=headers, **body
    )


@pytest.fixture
async def answers(client: httpx.AsyncClient) -> list[tuple[Probe, httpx.Response]]:
    document = (await client.get("/openapi.json")).json()
    found = []
    for probe in probes(document):
        response = await _send(client, probe, OTHER_KEY)
        if response.status_code == 403:  # an operation the admin's role may not do
            response = await _send(client, probe, API_KEY)
        found.append((probe, response))
    return found


async def test_every_400_names_its_field_in_our_words(
    answers: list[tuple[Probe, httpx.Response]],
) -> None:
    refused = [(probe, r.json()) for probe, r in answers if r.status_code == 400]
    assert len(refused) > 500, "the sweep reached the validation of most operations"
    assert not [(p, r.status_code) for p, r in answers if r.status_code in (422, 500)]
    foreign, unnamed = [], []
    for probe, body in refused:
        assert body["code"] == "validation_error" and body["errors"], (probe, body)
        for error in body["errors"]:
            if PYDANTIC.search(error["message"]) or PYDANTIC.search(body["detail"]):
                foreign.append((probe.method, probe.path, error))
            elif not _names_its_field(error):
                unnamed.append((probe.method, probe.path, error))
    assert not foreign[:20]
    assert not unnamed[:20]


async def test_the_examples_read_as_sentences(client: httpx.AsyncClient) -> None:
    headers = {"X-API-Key": OTHER_KEY}
    missing = await client.post("/api/v1/doctors/", json={}, headers=headers)
    errors = {e["field"]: e["message"] for e in missing.json()["errors"]}
    assert errors["name"] == "name is required"
    not_an_object = await client.post("/api/v1/patients/", json=[1], headers=headers)
    assert not_an_object.json()["errors"] == [
        {"field": "body", "message": "the body must be a JSON object"}
    ]
    nested = await client.post(
        "/api/v1/appointments/",
        json={
            "doctor_id": NOWHERE,
            "date": "2031-01-06",
            "start_time": "09:00",
            "source": "AI_CALLING_AGENT",
            "patient": {"mobile_number": "+14155550100"},
        },
        headers=headers,
    )
    assert {"field": "patient.name", "message": "patient.name is required"} in nested.json()[
        "errors"
    ]
