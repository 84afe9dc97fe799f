"""The front desk page (`/desk`) in a real Chromium against a real service process: signing in,
reading the columns, a walk-in, check-in, completion, cancellation, a refused booking, changes
made elsewhere appearing without a reload, the keyboard, and what the page may not do (send a
request elsewhere, keep the key beyond the tab)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser import record_requests
from tests.factories import doctor_payload
from tests.servers import service_processes

KEY = "desk-test-key"
EVERY_DAY = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "desk.png"


def clinic_zone() -> str:
    """A fixed-offset zone where it is now between 09:00 and 10:00, so today has free slots
    left from 11:00 on (every visit these tests book) whatever the hour the suite runs at."""
    offset = (9 - dt.datetime.now(dt.UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-5 is five hours ahead of UTC


# Chosen when the service starts, not when the suite is collected: a long suite run can take
# the clinic's clock past the morning this module's visits need.
ZONE: list[str] = []


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    ZONE[:] = [clinic_zone()]
    with service_processes(database_url, 1, KEY, {"CLINIC_TIMEZONE": ZONE[0]}) as urls:
        yield urls[0]


@pytest.fixture
def rest(wiped: str, service: str) -> Iterator[httpx.Client]:
    """The JSON API as another client (the phone agent) uses it; the data is wiped after."""
    with httpx.Client(base_url=f"{service}/api/v1", headers={"X-API-Key": KEY}) as client:
        yield client


def clinic_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(ZONE[0])).date()


def add_doctor(rest: httpx.Client, name: str, **overrides: Any) -> dict[str, Any]:
    payload = doctor_payload(
        name=name,
        working_days=EVERY_DAY,
        working_hours={"start": "08:00", "end": "18:00"},
        **overrides,
    )
    response = rest.post("/doctors/", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def book(
    rest: httpx.Client, doctor: dict[str, Any], start: str, patient: str, mobile: str
) -> httpx.Response:
    return rest.post(
        "/appointments/",
        json={
            "doctor_id": doctor["id"],
            "date": clinic_today().isoformat(),
            "start_time": start,
            "source": "AI_CALLING_AGENT",
            "patient": {"name": patient, "mobile_number": mobile},
        },
    )


def column(page: Page, doctor: dict[str, Any]) -> Locator:
    return page.get_by_role("region", name=doctor["name"], exact=True)


def visit(page: Page, doctor: dict[str, Any], patient: str) -> Locator:
    return column(page, doctor).get_by_role("listitem").filter(has_text=patient)


def sign_in(page: Page, service: str, key: str = KEY) -> None:
    page.goto(f"{service}/desk")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def status_of(rest: httpx.Client, appointment_id: str) -> str:
    status: str = rest.get(f"/appointments/{appointment_id}").json()["status"]
    return status


def test_the_desk_runs_a_morning(browser: Browser, service: str, rest: httpx.Client) -> None:
    rao = add_doctor(rest, "Dr Asha Rao")
    okafor = add_doctor(rest, "Dr Ben Okafor")
    retired = add_doctor(rest, "Dr Retired")
    rest.put(f"/doctors/{retired['id']}", json={"is_active": False}).raise_for_status()
    meera = book(rest, rao, "12:00", "Meera Iyer", "+14155550101").json()

    # The browser's own zone is far from the clinic's: the page still opens on the clinic's day.
    context = browser.new_context(timezone_id="Pacific/Kiritimati")
    page = context.new_page()
    requests = record_requests(page)

    sign_in(page, service, "not-the-key")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    expect(page.get_by_label("API key")).to_be_visible()
    sign_in(page, service)

    expect(page.get_by_label("Date")).to_have_value(clinic_today().isoformat())
    expect(page.get_by_role("heading", level=2)).to_have_text(["Dr Asha Rao", "Dr Ben Okafor"])
    expect(visit(page, rao, "Meera Iyer")).to_contain_text("12:00")
    expect(visit(page, rao, "Meera Iyer")).to_contain_text("Booked")
    expect(
        column(page, okafor).get_by_role("button", name="Book 13:00", exact=True)
    ).to_be_visible()

    # A walk-in, booked from a free slot.
    column(page, okafor).get_by_role("button", name="Book 13:00", exact=True).click()
    page.get_by_label("Patient name").fill("Walk In")
    page.get_by_label("Mobile number").fill("+14155550102")
    page.get_by_role("button", name="Book", exact=True).click()
    walk_in = visit(page, okafor, "Walk In")
    expect(walk_in).to_contain_text("Booked")
    expect(column(page, okafor).get_by_role("button", name="Book 13:00", exact=True)).to_have_count(
        0
    )
    listed = rest.get(f"/appointments/doctor/{okafor['id']}").json()
    assert [(a["start_time"], a["source"], a["status"]) for a in listed] == [
        ("13:00", "ADMIN", "BOOKED")
    ]
    walk_in_id = listed[0]["id"]

    # Arrival, then the end of the visit.
    walk_in.get_by_role("button", name="Check in", exact=True).click()
    expect(walk_in).to_contain_text("Checked in")
    assert status_of(rest, walk_in_id) == "CHECKED_IN"
    expect(walk_in.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    walk_in.get_by_role("button", name="Complete", exact=True).click()
    expect(walk_in).to_contain_text("Completed")
    expect(walk_in.get_by_role("button")).to_have_count(0)
    assert status_of(rest, walk_in_id) == "COMPLETED"

    # A cancellation frees the slot on the page.
    meera_row = visit(page, rao, "Meera Iyer")
    meera_row.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes, cancel").click()
    expect(meera_row).to_contain_text("Cancelled")
    assert status_of(rest, meera["id"]) == "CANCELLED"
    expect(column(page, rao).get_by_role("button", name="Book 12:00", exact=True)).to_be_visible()

    # A slot the phone agent takes while the desk is filling in the form: refused, explained.
    column(page, rao).get_by_role("button", name="Book 14:00", exact=True).click()
    page.get_by_label("Patient name").fill("Second Walk In")
    page.get_by_label("Mobile number").fill("+14155550103")
    assert book(rest, rao, "14:00", "Agent Caller", "+14155550104").status_code == 201
    sentence = book(rest, rao, "14:00", "Another Caller", "+14155550105").json()["detail"]
    page.get_by_role("button", name="Book", exact=True).click()
    message = page.get_by_role("alert")
    expect(message).to_contain_text(sentence)
    expect(message).to_contain_text("Nearest free slots")
    expect(message).to_contain_text("14:30")
    expect(visit(page, rao, "Agent Caller")).to_contain_text("14:00")
    day = rest.get("/desk/day").json()
    names = [a["patient_name"] for d in day["doctors"] for a in d["appointments"]]
    assert "Second Walk In" not in names and "Agent Caller" in names

    # A booking made elsewhere shows without a reload, within the promised 30 seconds.
    assert book(rest, okafor, "15:00", "Phone Caller", "+14155550106").status_code == 201
    expect(visit(page, okafor, "Phone Caller")).to_contain_text("Booked", timeout=30_000)

    # The key stays in this tab's session storage: no local storage, no cookie.
    assert page.evaluate("sessionStorage.getItem('clinic-desk-api-key')") == KEY
    assert page.evaluate("localStorage.length") == 0
    assert context.cookies() == []
    assert requests.leaving(service) == []
    context.close()


def test_the_desk_works_from_the_keyboard_and_holds_still_on_refresh(
    page: Page, service: str, rest: httpx.Client
) -> None:
    okafor = add_doctor(rest, "Dr Ben Okafor")
    sign_in(page, service)
    slot = column(page, okafor).get_by_role("button", name="Book 16:00", exact=True)
    expect(slot).to_be_visible()

    heading_box = column(page, okafor).get_by_role("heading").bounding_box()
    slot_box = slot.bounding_box()
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # a refresh now
    page.wait_for_load_state("networkidle")
    assert column(page, okafor).get_by_role("heading").bounding_box() == heading_box
    assert slot.bounding_box() == slot_box

    slot.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Mobile number")).to_be_focused()
    page.keyboard.type("not a number")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Patient name")).to_be_focused()
    page.keyboard.type("Keyboard Patient")
    page.keyboard.press("Enter")
    # The API's refusal of the number shows inside the form, which stays open to fix it.
    expect(page.get_by_role("dialog").get_by_role("alert")).to_contain_text(
        re.compile("mobile", re.I)
    )
    page.get_by_label("Mobile number").fill("+14155550107")
    page.get_by_label("Mobile number").press("Enter")
    row = visit(page, okafor, "Keyboard Patient")
    expect(row).to_contain_text("16:00")
    row.get_by_role("button", name="Check in", exact=True).focus()
    page.keyboard.press("Enter")
    expect(row).to_contain_text("Checked in")
    page.keyboard.press("Escape")


def test_a_busy_day_with_six_doctors_reads_at_laptop_size(
    browser: Browser, service: str, rest: httpx.Client
) -> None:
    names = [
        "Dr Asha Rao",
        "Dr Ben Okafor",
        "Dr Chen Li",
        "Dr Dana Cohen",
        "Dr Emil Novak",
        "Dr Farah Haddad",
    ]
    doctors = [add_doctor(rest, name) for name in names]
    patients = iter(
        [
            "Meera Iyer",
            "John Smith",
            "Aiko Tanaka",
            "Luis Garcia",
            "Fatima Khan",
            "Olga Petrova",
            "Kwame Mensah",
            "Sara Cohen",
            "Tom Baker",
            "Priya Nair",
            "Ana Souza",
            "Jonas Berg",
            "Yusuf Demir",
            "Mia Wong",
            "Ravi Kumar",
            "Elena Rossi",
            "Noah Kim",
            "Zara Ali",
        ]
    )
    number = iter(range(200, 300))
    visits = []
    for i, doctor in enumerate(doctors):
        for start in ("11:00", "12:00", "13:30")[: 2 + i % 2]:
            response = book(rest, doctor, start, next(patients), f"+14155550{next(number)}")
            assert response.status_code == 201, response.text
            visits.append(response.json()["id"])
    rest.post(f"/appointments/{visits[0]}/check-in").raise_for_status()
    rest.post(f"/appointments/{visits[3]}/check-in").raise_for_status()
    rest.post(f"/appointments/{visits[3]}/complete").raise_for_status()
    rest.delete(f"/appointments/{visits[5]}").raise_for_status()

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    sign_in(page, service)
    expect(page.get_by_role("heading", level=2)).to_have_count(6)
    # All six columns side by side, none pushed off the screen.
    for doctor in doctors:
        box = column(page, doctor).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1366
    expect(visit(page, doctors[0], "Meera Iyer")).to_contain_text("Checked in")
    image = page.screenshot()
    assert len(image) > 20_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(image)
    context.close()
