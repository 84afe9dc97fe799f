"""The cross-doctor search kept to a part of each day (`earliest_time`, `latest_time`): what a
caller means by "mornings" or "after three"."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import book, create_doctor, next_weekday

SEARCH = "/api/v1/appointments/availability"


async def search(client: httpx.AsyncClient, **query: Any) -> list[dict[str, Any]]:
    response = await client.get(SEARCH, params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_only_slots_inside_the_times_asked(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, specialization="Dermatology")
    day = next_weekday(1)
    one_day = {"start_date": day.isoformat(), "end_date": day.isoformat()}
    common = {"doctor_id": doctor["id"], "limit": 50, **one_day}

    after_three = await search(client, earliest_time="15:00", **common)
    assert [s["start_time"] for s in after_three] == ["15:00", "15:30", "16:00", "16:30"]

    mornings = await search(client, latest_time="12:00", **common)
    assert [s["start_time"] for s in mornings] == [
        f"{h:02}:{m:02}" for h in (9, 10, 11) for m in (0, 30)
    ]
    assert mornings[-1]["end_time"] == "12:00"

    # Both ends: a slot must start at or after the one and end at or before the other.
    window = await search(client, earliest_time="10:15", latest_time="11:30", **common)
    assert [(s["start_time"], s["end_time"]) for s in window] == [
        ("10:30", "11:00"),
        ("11:00", "11:30"),
    ]


async def test_a_full_window_moves_the_search_to_the_next_day(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client, specialization="Dermatology")
    day = next_weekday(1)
    for start in ("16:00", "16:30"):
        assert (await book(client, doctor["id"], day, start)).status_code == 201
    found = await search(
        client,
        doctor_id=doctor["id"],
        start_date=day.isoformat(),
        earliest_time="16:00",
        limit=2,
    )
    following = next_weekday(2)
    assert [(s["date"], s["start_time"]) for s in found] == [
        (following.isoformat(), "16:00"),
        (following.isoformat(), "16:30"),
    ]


async def test_times_out_of_order_or_malformed_are_400(client: httpx.AsyncClient) -> None:
    reversed_ = await client.get(SEARCH, params={"earliest_time": "15:00", "latest_time": "12:00"})
    assert reversed_.status_code == 400
    assert [e["field"] for e in reversed_.json()["errors"]] == ["earliest_time"]
    for field in ("earliest_time", "latest_time"):
        bad = await client.get(SEARCH, params={field: "3pm"})
        assert bad.status_code == 400
        assert [e["field"] for e in bad.json()["errors"]] == [field]


async def test_the_search_documents_the_times(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    parameters = schema["paths"][SEARCH]["get"]["parameters"]
    assert {"earliest_time", "latest_time"} <= {p["name"] for p in parameters}
