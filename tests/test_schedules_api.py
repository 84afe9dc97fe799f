"""Weekly hours with breaks, date overrides and clinic holidays over HTTP (SPEC: Schedules)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.factories import book, create_doctor, doctor_payload, next_weekday

API = "/api/v1"
MONDAY, TUESDAY, WEDNESDAY, SATURDAY, SUNDAY = 0, 1, 2, 5, 6
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def w(start: str, end: str) -> dict[str, str]:
    return {"start": start, "end": end}


LUNCH_BREAK = [w("09:00", "13:00"), w("14:00", "17:00")]
BREAK_WEEK: dict[str, Any] = {"monday": LUNCH_BREAK, "saturday": [w("09:00", "12:00")]}


def grid(first: str, last: str, step: int = 30) -> list[str]:
    """Every start from `first` to `last` inclusive, `step` minutes apart."""
    lo, hi = (int(t[:2]) * 60 + int(t[3:]) for t in (first, last))
    return [f"{m // 60:02d}:{m % 60:02d}" for m in range(lo, hi + 1, step)]


def full_week(**days: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    return {day: days.get(day, []) for day in WEEKDAYS}


def weekly_payload(week: dict[str, Any]) -> dict[str, Any]:
    return doctor_payload(weekly_hours=week)  # the factory leaves the request's fields out


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()  # the clinic's timezone is UTC in these tests


async def weekly_doctor(client: httpx.AsyncClient, week: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"{API}/doctors/", json=weekly_payload(week))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def day_of(
    client: httpx.AsyncClient, doctor_id: str, day: dt.date, **params: str
) -> dict[str, Any]:
    response = await client.get(
        f"{API}/appointments/availability/{doctor_id}", params={"date": day.isoformat(), **params}
    )
    assert response.status_code == 200, response.text
    (only,) = response.json()["days"]
    assert only["date"] == day.isoformat()
    return dict(only)


async def starts_on(
    client: httpx.AsyncClient, doctor_id: str, day: dt.date, **params: str
) -> list[str]:
    return [s["start_time"] for s in (await day_of(client, doctor_id, day, **params))["slots"]]


async def reason_on(client: httpx.AsyncClient, doctor_id: str, day: dt.date) -> Any:
    return (await day_of(client, doctor_id, day))["unavailable_reason"]


async def put_override(
    client: httpx.AsyncClient, doctor_id: str, day: dt.date, body: dict[str, Any]
) -> httpx.Response:
    return await client.put(f"{API}/doctors/{doctor_id}/overrides/{day.isoformat()}", json=body)


async def put_holiday(client: httpx.AsyncClient, day: dt.date, name: str) -> httpx.Response:
    return await client.put(f"{API}/clinic/holidays/{day.isoformat()}", json={"name": name})


def assert_invalid(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and isinstance(body["code"], str)
    assert body["errors"], body
    assert all({"field", "message"} <= set(error) for error in body["errors"])


def assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "slot_unavailable"
    assert body["reason"] == reason
    assert isinstance(body["alternatives"], list)


def without(body: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in fields}


# -- weekly hours ------------------------------------------------------------------------------


async def test_weekly_hours_with_breaks_derive_the_request_fields(
    client: httpx.AsyncClient,
) -> None:
    sent = {"saturday": BREAK_WEEK["saturday"], "monday": LUNCH_BREAK[::-1]}
    doctor = await weekly_doctor(client, sent)
    assert doctor["weekly_hours"] == full_week(**BREAK_WEEK)  # all seven days, sorted windows
    assert doctor["working_days"] == ["monday", "saturday"]  # Monday first
    assert doctor["working_hours"] == {"start": "09:00", "end": "17:00"}
    fetched = await client.get(f"{API}/doctors/{doctor['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == doctor
    touching = await weekly_doctor(client, {"friday": [w("09:00", "12:00"), w("12:00", "13:00")]})
    assert touching["weekly_hours"]["friday"] == [w("09:00", "12:00"), w("12:00", "13:00")]


async def test_lunch_break_offers_no_slot_and_the_grid_restarts_after_it(
    client: httpx.AsyncClient,
) -> None:
    doctor = await weekly_doctor(client, BREAK_WEEK)
    monday = next_weekday(MONDAY)
    expected = grid("09:00", "12:30") + grid("14:00", "16:30")
    assert await starts_on(client, doctor["id"], monday) == expected
    assert await starts_on(client, doctor["id"], next_weekday(SATURDAY)) == grid("09:00", "11:30")
    assert await reason_on(client, doctor["id"], next_weekday(TUESDAY)) == "non_working_day"
    assert_refused(await book(client, doctor["id"], monday, "13:00"), "outside_hours")
    afternoon = await book(client, doctor["id"], monday, "14:00")
    assert afternoon.status_code == 201, afternoon.text
    assert afternoon.json()["end_time"] == "14:30"


async def test_a_window_off_the_morning_grid_has_its_own_grid(client: httpx.AsyncClient) -> None:
    doctor = await weekly_doctor(client, {"wednesday": [w("09:00", "12:00"), w("12:50", "15:00")]})
    wednesday = next_weekday(WEDNESDAY)
    expected = [*grid("09:00", "11:30"), "12:50", "13:20", "13:50", "14:20"]
    assert await starts_on(client, doctor["id"], wednesday) == expected
    assert_refused(await book(client, doctor["id"], wednesday, "13:00"), "outside_hours")
    booked = await book(client, doctor["id"], wednesday, "12:50")
    assert booked.status_code == 201, booked.text
    assert (booked.json()["start_time"], booked.json()["end_time"]) == ("12:50", "13:20")


@pytest.mark.parametrize(
    "week",
    [
        {"monday": [w("09:00", "12:00"), w("11:30", "14:00")]},
        {"monday": [w("09:00", "17:00"), w("10:00", "11:00")]},
        {"monday": [w("12:00", "12:00")]},
        {"monday": [w("17:00", "09:00")]},
        {"monday": [w("9am", "17:00")]},
        {"funday": [w("09:00", "12:00")]},
    ],
    ids=["overlap", "nested", "empty", "backwards", "malformed", "unknown-day"],
)
async def test_invalid_weekly_hours_are_400(
    client: httpx.AsyncClient, week: dict[str, Any]
) -> None:
    assert_invalid(await client.post(f"{API}/doctors/", json=weekly_payload(week)))
    doctor = await weekly_doctor(client, BREAK_WEEK)
    assert_invalid(await client.put(f"{API}/doctors/{doctor['id']}", json={"weekly_hours": week}))
    assert (await client.get(f"{API}/doctors/{doctor['id']}")).json() == doctor


async def test_the_requests_way_gives_one_window_per_day(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(
        client, working_days=["wednesday", "monday"], working_hours=w("08:00", "12:30")
    )
    window = [w("08:00", "12:30")]
    assert doctor["weekly_hours"] == full_week(monday=window, wednesday=window)
    assert doctor["working_days"] == ["monday", "wednesday"]
    assert await starts_on(client, doctor["id"], next_weekday(MONDAY)) == grid("08:00", "12:00")

    # Sent the request's way on a week with breaks: that one window on each day, breaks dropped.
    doctor = await weekly_doctor(client, BREAK_WEEK)
    response = await client.put(
        f"{API}/doctors/{doctor['id']}",
        json={"working_days": ["thursday", "tuesday"], "working_hours": w("10:00", "15:00")},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    window = [w("10:00", "15:00")]
    assert updated["weekly_hours"] == full_week(tuesday=window, thursday=window)
    assert updated["working_days"] == ["tuesday", "thursday"]
    assert updated["working_hours"] == w("10:00", "15:00")
    assert await starts_on(client, doctor["id"], next_weekday(TUESDAY)) == grid("10:00", "14:30")
    assert await reason_on(client, doctor["id"], next_weekday(MONDAY)) == "non_working_day"


async def test_weekly_hours_with_matching_request_fields_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    weekdays = dict.fromkeys(WEEKDAYS[:5], LUNCH_BREAK)
    # doctor_payload's own working_days (Monday to Friday) and 09:00-17:00 agree with this week.
    created = await client.post(f"{API}/doctors/", json=doctor_payload(weekly_hours=weekdays))
    assert created.status_code == 201, created.text
    assert created.json()["weekly_hours"] == full_week(**weekdays)
    saturday = {"saturday": [w("08:00", "18:00")]}
    both = await client.put(
        f"{API}/doctors/{created.json()['id']}",
        json={
            "weekly_hours": saturday,
            "working_days": ["saturday"],
            "working_hours": w("08:00", "18:00"),
        },
    )
    assert both.status_code == 200, both.text
    assert both.json()["weekly_hours"] == full_week(**saturday)
    assert both.json()["working_days"] == ["saturday"]


@pytest.mark.parametrize(
    "disagreeing",
    [{"working_days": ["monday", "tuesday"]}, {"working_hours": w("09:00", "13:00")}],
    ids=["days", "hours"],
)
async def test_weekly_hours_with_disagreeing_request_fields_are_400(
    client: httpx.AsyncClient, disagreeing: dict[str, Any]
) -> None:
    derived = {"working_days": ["monday"], "working_hours": w("09:00", "17:00")}
    body = {"weekly_hours": {"monday": LUNCH_BREAK}, **derived, **disagreeing}
    assert_invalid(await client.post(f"{API}/doctors/", json=doctor_payload(**body)))
    doctor = await weekly_doctor(client, BREAK_WEEK)
    assert_invalid(await client.put(f"{API}/doctors/{doctor['id']}", json=body))
    assert (await client.get(f"{API}/doctors/{doctor['id']}")).json() == doctor


async def test_a_get_body_sent_back_as_put_changes_nothing(client: httpx.AsyncClient) -> None:
    doctor = await weekly_doctor(client, BREAK_WEEK)
    fetched = (await client.get(f"{API}/doctors/{doctor['id']}")).json()
    body = without(fetched, "id", "created_at", "updated_at")
    response = await client.put(f"{API}/doctors/{doctor['id']}", json=body)
    assert response.status_code == 200, response.text
    assert without(response.json(), "updated_at") == without(fetched, "updated_at")
    again = (await client.get(f"{API}/doctors/{doctor['id']}")).json()
    assert without(again, "updated_at") == without(fetched, "updated_at")


# -- date overrides ----------------------------------------------------------------------------


async def test_override_opens_a_sunday_then_replaces_and_today_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    doctor = await create_doctor(client)  # Monday to Friday, 09:00-17:00
    sunday = next_weekday(SUNDAY)
    windows = [w("14:00", "15:00"), w("10:00", "12:00")]
    first = await put_override(client, doctor["id"], sunday, {"windows": windows, "reason": "Open"})
    assert first.status_code == 201, first.text
    fields = ("doctor_id", "date", "windows", "reason", "affected_appointments")
    assert {key: first.json()[key] for key in fields} == {
        "doctor_id": doctor["id"],
        "date": sunday.isoformat(),
        "windows": windows[::-1],
        "reason": "Open",
        "affected_appointments": [],
    }
    opened = [*grid("10:00", "11:30"), "14:00", "14:30"]
    assert await starts_on(client, doctor["id"], sunday) == opened
    assert await reason_on(client, doctor["id"], sunday + dt.timedelta(days=7)) == "non_working_day"

    second_body = {"windows": [w("10:00", "11:00")]}
    second = await put_override(client, doctor["id"], sunday, second_body)
    assert second.status_code == 200, second.text
    assert second.json()["windows"] == [w("10:00", "11:00")]
    assert await starts_on(client, doctor["id"], sunday) == ["10:00", "10:30"]
    booked = await book(client, doctor["id"], sunday, "10:30")
    assert booked.status_code == 201, booked.text
    assert (await put_override(client, doctor["id"], today(), second_body)).status_code == 201
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await put_override(client, unknown, sunday, second_body)).status_code == 404


async def test_empty_override_closes_the_day(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    monday = next_weekday(MONDAY)
    booked = (await book(client, doctor["id"], monday, "10:00")).json()
    response = await put_override(client, doctor["id"], monday, {"windows": [], "reason": "Away"})
    assert response.status_code == 201, response.text
    assert [a["id"] for a in response.json()["affected_appointments"]] == [booked["id"]]
    day = await day_of(client, doctor["id"], monday)
    assert (day["unavailable_reason"], day["slots"]) == ("non_working_day", [])
    assert_refused(await book(client, doctor["id"], monday, "11:00"), "non_working_day")
    kept = (await client.get(f"{API}/appointments/{booked['id']}")).json()
    assert kept["status"] == "BOOKED"  # left for a person to move


async def test_override_lists_only_appointments_that_no_longer_fit(
    client: httpx.AsyncClient,
) -> None:
    doctor = await create_doctor(client)
    monday = next_weekday(MONDAY)
    ids = {
        t: (await book(client, doctor["id"], monday, t)).json()["id"]
        for t in grid("09:00", "12:00", 90)
    }
    cancelled = (await book(client, doctor["id"], monday, "15:00")).json()
    assert (await client.delete(f"{API}/appointments/{cancelled['id']}")).status_code == 200
    # 09:00-09:30 fits, 10:30-11:00 fits, 12:00-12:30 does not; the cancelled one is not active.
    response = await put_override(client, doctor["id"], monday, {"windows": [w("09:00", "11:45")]})
    assert response.status_code == 201, response.text
    assert [a["id"] for a in response.json()["affected_appointments"]] == [ids["12:00"]]
    straddling = await put_override(
        client, doctor["id"], monday, {"windows": [w("09:00", "10:45")]}
    )
    assert straddling.status_code == 200, straddling.text
    affected = {a["id"] for a in straddling.json()["affected_appointments"]}
    assert affected == {ids["10:30"], ids["12:00"]}


async def test_overrides_list_by_range_and_delete(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    base = f"{API}/doctors/{doctor['id']}/overrides"
    monday = next_weekday(MONDAY)
    days = [monday + dt.timedelta(days=n) for n in (9, 2, 0, 4)]
    for n, day in enumerate(days):  # 10:00, 11:00, 12:00, 13:00: a half-hour window each
        put = await put_override(
            client, doctor["id"], day, {"windows": [w(f"1{n}:00", f"1{n}:30")]}
        )
        assert put.status_code == 201, put.text
    end = monday + dt.timedelta(days=4)
    listed = await client.get(
        base, params={"start_date": monday.isoformat(), "end_date": end.isoformat()}
    )
    assert listed.status_code == 200, listed.text
    in_range = [days[2], days[1], end]
    assert [o["date"] for o in listed.json()] == [d.isoformat() for d in in_range]
    assert listed.json()[0]["windows"] == [w("12:00", "12:30")]
    assert all(o["doctor_id"] == doctor["id"] for o in listed.json())

    assert await starts_on(client, doctor["id"], monday) == ["12:00"]
    assert (await client.delete(f"{base}/{monday.isoformat()}")).status_code == 204
    assert (await client.delete(f"{base}/{monday.isoformat()}")).status_code == 404
    assert await starts_on(client, doctor["id"], monday) == grid("09:00", "16:30")
    remaining = await client.get(
        base, params={"start_date": monday.isoformat(), "end_date": days[0].isoformat()}
    )
    left = sorted(d.isoformat() for d in days if d != monday)
    assert [o["date"] for o in remaining.json()] == left


@pytest.mark.parametrize(
    ("offset", "body"),
    [
        (7, {"windows": [w("09:00", "12:00"), w("11:00", "13:00")]}),
        (7, {"windows": [w("12:00", "09:00")]}),
        (7, {"windows": [w("12:00", "12:00")]}),
        (7, {"reason": "no windows given"}),
        (7, {"windows": [], "colour": "red"}),
        (-1, {"windows": [w("09:00", "10:00")]}),
    ],
    ids=["overlap", "backwards", "empty", "missing", "unknown-field", "yesterday"],
)
async def test_invalid_override_is_400(
    client: httpx.AsyncClient, offset: int, body: dict[str, Any]
) -> None:
    doctor = await create_doctor(client, working_days=list(WEEKDAYS))
    day = today() + dt.timedelta(days=offset)
    assert_invalid(await put_override(client, doctor["id"], day, body))
    window = {
        "start_date": (today() - dt.timedelta(days=2)).isoformat(),
        "end_date": (today() + dt.timedelta(days=30)).isoformat(),
    }
    listed = await client.get(f"{API}/doctors/{doctor['id']}/overrides", params=window)
    assert listed.status_code == 200 and listed.json() == []


async def test_leaves_still_apply_on_top_of_overrides(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    sunday = next_weekday(SUNDAY)
    later = sunday + dt.timedelta(days=7)
    for day in (sunday, later):
        opened = await put_override(client, doctor["id"], day, {"windows": [w("09:00", "12:00")]})
        assert opened.status_code == 201, opened.text
    leaves = f"{API}/doctors/{doctor['id']}/leaves"
    part = {"date": sunday.isoformat(), "start_time": "10:00", "end_time": "11:00"}
    assert (await client.post(leaves, json=part)).status_code == 201
    assert (await client.post(leaves, json={"date": later.isoformat()})).status_code == 201
    assert await starts_on(client, doctor["id"], sunday) == ["09:00", "09:30", "11:00", "11:30"]
    assert_refused(await book(client, doctor["id"], sunday, "10:00"), "leave")
    assert await reason_on(client, doctor["id"], later) == "leave"
    assert_refused(await book(client, doctor["id"], later, "09:00"), "leave")


# -- clinic holidays ---------------------------------------------------------------------------


async def test_holiday_closes_every_doctor_and_lists_affected(client: httpx.AsyncClient) -> None:
    first = await create_doctor(client)
    second = await create_doctor(client, working_hours=w("12:00", "18:00"))
    monday = next_weekday(MONDAY, weeks_ahead=3)
    a = (await book(client, first["id"], monday, "10:00")).json()
    b = (await book(client, second["id"], monday, "13:00")).json()
    gone = (await book(client, second["id"], monday, "15:00")).json()
    await client.delete(f"{API}/appointments/{gone['id']}")

    created = await put_holiday(client, monday, "Founders Day")
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["date"], body["name"]) == (monday.isoformat(), "Founders Day")
    assert {x["id"] for x in body["affected_appointments"]} == {a["id"], b["id"]}
    replaced = await put_holiday(client, monday, "Founders' Day")
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["name"] == "Founders' Day"

    for doctor in (first, second):
        day = await day_of(client, doctor["id"], monday)
        assert (day["unavailable_reason"], day["slots"]) == ("holiday", [])
        refused = await book(client, doctor["id"], monday, "14:00")
        assert_refused(refused, "holiday")
        assert monday.isoformat() not in {x["date"] for x in refused.json()["alternatives"]}
    search = await client.get(
        f"{API}/appointments/availability",
        params={"start_date": monday.isoformat(), "end_date": monday.isoformat()},
    )
    assert search.status_code == 200, search.text
    assert {s["doctor_id"] for s in search.json()} & {first["id"], second["id"]} == set()


async def test_holiday_beats_overrides_and_non_working_days(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    sunday = next_weekday(SUNDAY, weeks_ahead=3)
    opened = await put_override(client, doctor["id"], sunday, {"windows": [w("09:00", "12:00")]})
    assert opened.status_code == 201, opened.text
    for day in (sunday - dt.timedelta(days=1), sunday):
        assert (await put_holiday(client, day, "Fest")).status_code == 201
        assert await reason_on(client, doctor["id"], day) == "holiday"
    assert_refused(await book(client, doctor["id"], sunday, "09:00"), "holiday")


async def test_holidays_list_by_range_and_delete(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    monday = next_weekday(MONDAY, weeks_ahead=5)
    for n in (8, 1, 0, 3):
        day = monday + dt.timedelta(days=n)
        assert (await put_holiday(client, day, f"Holiday {n}")).status_code == 201
    end = monday + dt.timedelta(days=3)
    listed = await client.get(
        f"{API}/clinic/holidays",
        params={"start_date": monday.isoformat(), "end_date": end.isoformat()},
    )
    assert listed.status_code == 200, listed.text
    assert [(h["date"], h["name"]) for h in listed.json()] == [
        ((monday + dt.timedelta(days=n)).isoformat(), f"Holiday {n}") for n in (0, 1, 3)
    ]
    url = f"{API}/clinic/holidays/{monday.isoformat()}"
    assert (await client.delete(url)).status_code == 204
    assert (await client.delete(url)).status_code == 404
    assert await reason_on(client, doctor["id"], monday) is None
    assert (await book(client, doctor["id"], monday, "10:00")).status_code == 201


@pytest.mark.parametrize(
    ("offset", "body"),
    [
        (-1, {"name": "Too late"}),
        (7, {}),
        (7, {"name": "   "}),
        (7, {"name": "Fest", "doctor_id": "x"}),
    ],
    ids=["yesterday", "no-name", "blank-name", "unknown-field"],
)
async def test_invalid_holiday_is_400(
    client: httpx.AsyncClient, offset: int, body: dict[str, Any]
) -> None:
    day = today() + dt.timedelta(days=offset)
    assert_invalid(await client.put(f"{API}/clinic/holidays/{day.isoformat()}", json=body))
    assert_invalid(await client.put(f"{API}/clinic/holidays/2027-02-30", json={"name": "No day"}))
