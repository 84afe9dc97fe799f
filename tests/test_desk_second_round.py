"""The desk page's second round (spec: "Front desk, second round") in a real Chromium against
a real service process, by visible labels and roles: mobile number and confirmation on each
card, Confirm, Undo, Reschedule ("New date", "New time", "Move"), Cancel that asks first,
the mobile-first booking form with an existing patient and visit types, every button usable
again after a refusal (the stuck "No-show" of issue #33), the page showing the true state
after a refused cancel, a readonly key with no action buttons, a phone's 360 px with one
doctor at a time, the favicon, and axe-core's serious or critical violations (none)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.servers import service_processes
from tests.test_desk_page import ZONE, add_doctor, book, clinic_today, clinic_zone, column, visit

ADMIN_KEY = "desk-admin-key"
READONLY_KEY = "desk-readonly-key"
KEYS = f"desk:{ADMIN_KEY},wallboard:{READONLY_KEY}:readonly"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    ZONE[:] = [clinic_zone()]
    env = {"CLINIC_TIMEZONE": ZONE[0], "SERVICE_API_KEY": KEYS}
    with service_processes(database_url, 1, ADMIN_KEY, env) as urls:
        yield urls[0]


@pytest.fixture
def rest(wiped: str, service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{service}/api/v1", headers={"X-API-Key": ADMIN_KEY}) as client:
        yield client


def open_desk(browser: Browser, service: str, key: str = ADMIN_KEY, size: Any = None) -> Page:
    context = browser.new_context(viewport=size or DESKTOP)
    page = context.new_page()
    page.goto(f"{service}/desk")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Date", exact=True)).to_have_value(clinic_today().isoformat())
    return page


def no_serious_violations(page: Page) -> None:
    """axe-core (bundled with axe-playwright-python: nothing is fetched) on the page as it is."""
    results = Axe().run(page)
    assert results.response["testEngine"]["name"] == "axe-core"  # it ran, on this page
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], serious


def status_of(rest: httpx.Client, appointment_id: str) -> dict[str, Any]:
    body: dict[str, Any] = rest.get(f"/appointments/{appointment_id}").json()
    return body


def booked(rest: httpx.Client, doctor: dict[str, Any], start: str, name: str, mobile: str) -> str:
    response = book(rest, doctor, start, name, mobile)
    assert response.status_code == 201, response.text
    appointment_id: str = response.json()["id"]
    return appointment_id


def test_a_card_shows_mobile_and_confirmation_and_each_step_can_be_undone(
    browser: Browser, service: str, rest: httpx.Client
) -> None:
    rao = add_doctor(rest, "Dr Asha Rao")
    meera = booked(rest, rao, "12:00", "Meera Iyer", "+14155550101")
    page = open_desk(browser, service)
    card = visit(page, rao, "Meera Iyer")
    expect(card).to_contain_text("+14155550101")
    expect(card).to_contain_text("Unconfirmed")
    expect(column(page, rao).get_by_text("1 to come", exact=False)).to_be_visible()
    no_serious_violations(page)

    card.get_by_role("button", name="Confirm", exact=True).click()
    expect(card).to_contain_text("Confirmed")
    expect(card).not_to_contain_text("Unconfirmed")
    expect(card.get_by_role("button", name="Confirm", exact=True)).to_have_count(0)
    assert status_of(rest, meera)["confirmation_status"] == "confirmed"

    # Issue #33's stuck button: an early "No-show" is refused, explained, and stays usable.
    no_show = card.get_by_role("button", name="No-show", exact=True)
    no_show.click()
    expect(page.get_by_role("alert")).to_contain_text("once its start time has passed")
    expect(no_show).to_be_enabled()
    expect(card).to_contain_text("Booked")
    no_show.click()
    expect(page.get_by_role("alert")).to_contain_text("once its start time has passed")
    expect(no_show).to_be_enabled()

    card.get_by_role("button", name="Check in", exact=True).click()
    expect(card).to_contain_text("Checked in")
    expect(column(page, rao).get_by_text("1 here", exact=False)).to_be_visible()
    assert status_of(rest, meera)["status"] == "CHECKED_IN"
    card.get_by_role("button", name="Undo", exact=True).click()
    expect(card).to_contain_text("Booked")
    expect(card.get_by_role("button", name="Undo", exact=True)).to_have_count(0)
    expect(card.get_by_role("button", name="Check in", exact=True)).to_be_enabled()
    assert status_of(rest, meera)["status"] == "BOOKED"
    page.context.close()


def test_cancel_asks_first_and_a_refused_cancel_shows_the_true_state(
    browser: Browser, service: str, rest: httpx.Client
) -> None:
    okafor = add_doctor(rest, "Dr Ben Okafor")
    john = booked(rest, okafor, "11:00", "John Smith", "+14155550111")
    aiko = booked(rest, okafor, "12:00", "Aiko Tanaka", "+14155550112")
    page = open_desk(browser, service)

    john_card = visit(page, okafor, "John Smith")
    john_card.get_by_role("button", name="Cancel", exact=True).click()
    question = page.get_by_role("alertdialog")
    expect(question).to_be_visible()
    expect(question).to_contain_text("John Smith")
    question.get_by_role("button", name="Keep", exact=True).click()
    expect(question).to_be_hidden()
    expect(john_card).to_contain_text("Booked")
    assert status_of(rest, john)["status"] == "BOOKED"

    john_card.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes, cancel").click()
    expect(john_card).to_contain_text("Cancelled")
    assert status_of(rest, john)["status"] == "CANCELLED"

    # Someone else checks Aiko in while the page still shows her booked.
    aiko_card = visit(page, okafor, "Aiko Tanaka")
    expect(aiko_card.get_by_role("button", name="Cancel", exact=True)).to_be_visible()
    rest.post(f"/appointments/{aiko}/check-in").raise_for_status()
    sentence = rest.delete(f"/appointments/{aiko}").json()["detail"]
    aiko_card.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Yes, cancel").click()
    expect(page.get_by_role("alert")).to_contain_text(sentence)
    expect(aiko_card).to_contain_text("Checked in")
    expect(aiko_card.get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    for name in ("Complete", "Undo"):
        expect(aiko_card.get_by_role("button", name=name, exact=True)).to_be_enabled()
    expect(column(page, okafor).get_by_role("button", name="Book 15:00")).to_be_enabled()
    aiko_card.get_by_role("button", name="Complete", exact=True).click()
    expect(aiko_card).to_contain_text("Completed")
    page.context.close()


def test_reschedule_offers_the_doctors_free_times_and_moves(
    browser: Browser, service: str, rest: httpx.Client
) -> None:
    rao = add_doctor(rest, "Dr Asha Rao")
    meera = booked(rest, rao, "12:00", "Meera Iyer", "+14155550121")
    booked(rest, rao, "15:00", "Priya Nair", "+14155550122")
    page = open_desk(browser, service)
    card = visit(page, rao, "Meera Iyer")
    card.get_by_role("button", name="Reschedule", exact=True).click()

    form = page.get_by_role("dialog")
    expect(form.get_by_label("New date")).to_have_value(clinic_today().isoformat())
    free = rest.get(
        f"/appointments/availability/{rao['id']}", params={"date": clinic_today().isoformat()}
    ).json()["days"][0]["slots"]
    times = [f"{s['start_time']}\u2013{s['end_time']}" for s in free]
    expect(form.get_by_label("New time").locator("option")).to_have_text(times)
    assert "15:00\u201315:30" not in times
    no_serious_violations(page)

    tomorrow = clinic_today() + dt.timedelta(days=1)
    form.get_by_label("New date").fill(tomorrow.isoformat())
    expect(form.get_by_label("New time").locator("option").first).to_have_text("08:00\u201308:30")
    form.get_by_label("New date").fill(clinic_today().isoformat())
    expect(form.get_by_label("New time").locator("option")).to_have_text(times)
    form.get_by_label("New time").select_option("16:00")
    form.get_by_role("button", name="Move", exact=True).click()
    expect(form).to_be_hidden()
    expect(card).to_contain_text("16:00")
    expect(card).to_contain_text("Rescheduled")
    moved = status_of(rest, meera)
    assert (moved["start_time"], moved["status"]) == ("16:00", "RESCHEDULED")
    expect(column(page, rao).get_by_role("button", name="Book 12:00", exact=True)).to_be_visible()
    page.context.close()


def test_the_booking_form_asks_the_mobile_first_and_knows_an_existing_patient(
    browser: Browser, service: str, rest: httpx.Client
) -> None:
    long_visit = rest.post(
        "/visit-types/", json={"name": "Long consultation", "duration_minutes": 60}
    ).json()
    rao = add_doctor(rest, "Dr Asha Rao", visit_type_ids=[long_visit["id"]])
    okafor = add_doctor(rest, "Dr Ben Okafor")
    first = booked(rest, okafor, "11:00", "Meera Iyer", "+14155550131")
    patient = rest.get(f"/appointments/{first}").json()["patient_id"]
    record = rest.get(f"/patients/{patient}").json()
    page = open_desk(browser, service)

    column(page, okafor).get_by_role("button", name="Book 13:00", exact=True).click()
    form = page.get_by_role("dialog")
    expect(form.get_by_label("Mobile number")).to_be_focused()
    expect(form.get_by_label("Visit type")).to_be_hidden()
    no_serious_violations(page)
    # Another spelling of the same number, as a caller might give it.
    form.get_by_label("Mobile number").fill("+1 415 555 0131")
    form.get_by_label("Mobile number").press("Tab")
    expect(form.get_by_text("Existing patient: Meera Iyer")).to_be_visible()
    expect(form.get_by_label("Patient name")).to_be_hidden()
    form.get_by_role("button", name="Book", exact=True).click()
    expect(form).to_be_hidden()
    second = column(page, okafor).get_by_role("listitem").filter(has_text="13:00")
    expect(second).to_contain_text("Meera Iyer")
    assert rest.get(f"/patients/{patient}").json() == record
    listed = rest.get(f"/appointments/patient/{patient}").json()
    assert sorted(a["start_time"] for a in listed) == ["11:00", "13:00"]

    # A doctor offering visit types: the form asks which.
    column(page, rao).get_by_role("button", name="Book 14:00", exact=True).click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Existing patient")).to_be_hidden()
    expect(form.get_by_label("Visit type").locator("option")).to_have_text(
        ["Standard visit (30 min)", "Long consultation (60 min)"]
    )
    form.get_by_label("Mobile number").fill("+14155550132")
    form.get_by_label("Patient name").fill("Tom Baker")
    form.get_by_label("Visit type").select_option(label="Long consultation (60 min)")
    form.get_by_role("button", name="Book", exact=True).click()
    expect(visit(page, rao, "Tom Baker")).to_contain_text("14:00\u201315:00")
    (made,) = rest.get(f"/appointments/doctor/{rao['id']}").json()
    assert (made["visit_type_id"], made["end_time"]) == (long_visit["id"], "15:00")
    page.context.close()


def test_a_readonly_key_sees_the_day_and_no_action(
    browser: Browser, service: str, rest: httpx.Client
) -> None:
    rao = add_doctor(rest, "Dr Asha Rao")
    booked(rest, rao, "12:00", "Meera Iyer", "+14155550141")
    checked_in = booked(rest, rao, "13:00", "John Smith", "+14155550142")
    rest.post(f"/appointments/{checked_in}/check-in").raise_for_status()
    page = open_desk(browser, service, READONLY_KEY)
    expect(visit(page, rao, "Meera Iyer")).to_contain_text("+14155550141")
    expect(visit(page, rao, "John Smith")).to_contain_text("Checked in")
    expect(column(page, rao).get_by_text("14:00 free")).to_be_visible()
    expect(page.get_by_role("main").get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"^Book \d"))).to_have_count(0)
    page.context.close()


def test_a_phone_shows_one_doctor_at_a_time_without_sideways_scrolling(
    browser: Browser, service: str, rest: httpx.Client
) -> None:
    names = ["Dr Asha Rao", "Dr Ben Okafor", "Dr Chen Li"]
    doctors = [add_doctor(rest, name) for name in names]
    booked(rest, doctors[0], "11:00", "Meera Iyer", "+14155550151")
    booked(rest, doctors[1], "12:00", "Svetlana Alexandrovna Konstantinopolskaya", "+14155550152")

    desktop = open_desk(browser, service)
    expect(desktop.get_by_label("Doctor", exact=True)).to_be_hidden()
    expect(desktop.get_by_role("heading", level=2)).to_have_text(names)
    desktop.context.close()

    page = open_desk(browser, service, size=PHONE)
    requests: list[tuple[int, str]] = []
    page.on("response", lambda response: requests.append((response.status, response.url)))

    def fits() -> None:
        width = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert width[0] <= width[1], width

    choice = page.get_by_label("Doctor", exact=True)
    expect(choice).to_be_visible()
    expect(page.get_by_role("heading", level=2)).to_have_text(["Dr Asha Rao"])
    expect(visit(page, doctors[0], "Meera Iyer")).to_be_visible()
    fits()
    for box_of in (page.get_by_role("button", name="Sign out"), page.get_by_label("Date")):
        box = box_of.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    no_serious_violations(page)
    if os.environ.get("UPDATE_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        (DOCS / "desk-phone.png").write_bytes(page.screenshot())

    choice.select_option(label="Dr Ben Okafor")
    expect(page.get_by_role("heading", level=2)).to_have_text(["Dr Ben Okafor"])
    expect(visit(page, doctors[1], "Konstantinopolskaya")).to_be_visible()
    fits()

    column(page, doctors[1]).get_by_role("button", name="Book 13:00", exact=True).click()
    form = page.get_by_role("dialog")
    expect(form.get_by_label("Mobile number")).to_be_focused()
    box = form.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    fits()
    form.get_by_role("button", name="Close").click()

    visit(page, doctors[1], "Konstantinopolskaya").get_by_role("button", name="Reschedule").click()
    expect(page.get_by_role("dialog").get_by_label("New time")).to_be_visible()
    fits()
    # The page's icon is served (no 404 in the console on any request it made).
    assert page.evaluate("document.querySelector('link[rel=icon]').href").endswith("favicon.svg")
    icon = httpx.get(f"{service}/desk/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert [r for r in requests if r[0] >= 400] == []
    page.context.close()
