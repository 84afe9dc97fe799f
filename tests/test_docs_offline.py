"""/docs and /redoc work with no internet: in a real Chromium against a real service process,
they render the API and every request they make stays on the service's origin."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser import LOOPBACK_NAME, record_requests
from tests.servers import service_processes

ASSETS = {
    "/static/docs/swagger-ui-bundle.js": "javascript",
    "/static/docs/swagger-ui.css": "text/css",
    "/static/docs/redoc.standalone.js": "javascript",
    "/static/docs/favicon.png": "image/png",
}
# Loopback as tests usually reach it, and a host name as a clinic's network would: Swagger UI
# only fetches some things (its validator badge) when the host is not localhost/127.0.0.1.
HOSTS = ["127.0.0.1", LOOPBACK_NAME]


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    with service_processes(database_url, 1, "docs-test-key") as urls:
        yield urls[0]


def _origin(service: str, host: str) -> str:
    return service.replace("127.0.0.1", host)


@pytest.mark.parametrize("host", HOSTS)
def test_swagger_ui_renders_the_api_from_the_service_alone(
    page: Page, service: str, host: str
) -> None:
    origin = _origin(service, host)
    requests = record_requests(page)
    page.goto(f"{origin}/docs")

    doctors = page.locator('.opblock-summary-path[data-path="/api/v1/doctors/"]')
    expect(doctors.first).to_be_visible(timeout=20_000)
    expect(page.locator(".opblock")).not_to_have_count(0)
    page.wait_for_load_state("networkidle")

    assert f"{origin}/openapi.json" in requests.made
    assert requests.leaving(origin) == []


@pytest.mark.parametrize("host", HOSTS)
def test_redoc_renders_the_api_from_the_service_alone(page: Page, service: str, host: str) -> None:
    origin = _origin(service, host)
    requests = record_requests(page)
    page.goto(f"{origin}/redoc")

    expect(page.get_by_role("heading", name="Create Doctor")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("/api/v1/doctors/", exact=True).first).to_be_attached()
    page.wait_for_load_state("networkidle")

    assert f"{origin}/openapi.json" in requests.made
    assert requests.leaving(origin) == []


def test_docs_pages_and_assets_are_served_without_a_key(service: str) -> None:
    with httpx.Client(base_url=service, timeout=10) as http:
        for path, kind in ASSETS.items():
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert kind in answer.headers["content-type"], path
            assert answer.content, path
        for path in ("/docs", "/redoc"):
            answer = http.get(path)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in answer.headers["content-security-policy"]
            # Every script, style sheet and icon the page names is one of the service's own.
            linked = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
            assert linked
            assert [url for url in linked if url not in ASSETS] == [], path
        assert http.get("/openapi.json").status_code == 200
