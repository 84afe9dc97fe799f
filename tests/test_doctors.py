from __future__ import annotations

import uuid

import httpx
import pytest

from tests.factories import book, create_doctor, doctor_payload, next_weekday


async def test_create_get_and_defaults(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(
        client, email="Mixed.Case@Clinic.Example", working_days=["Friday", "monday"]
    )
    assert doctor["email"] == "mixed.case@clinic.example"
    assert doctor["working_days"] == ["monday", "friday"]
    assert doctor["working_hours"] == {"start": "09:00", "end": "17:00"}
    assert doctor["is_active"] is True
    fetched = await client.get(f"/api/v1/doctors/{doctor['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == doctor


@pytest.mark.parametrize(
    "override",
    [
        {"working_days": ["funday"]},
        {"working_days": []},
        {"working_hours": {"start": "17:00", "end": "09:00"}},
        {"working_hours": {"start": "09:00", "end": "09:00"}},
        {"working_hours": {"start": "9am", "end": "17:00"}},
        {"slot_duration_minutes": 4},
        {"slot_duration_minutes": 481},
        {"experience_years": -1},
        {"email": "not-an-email"},
        {"name": "   "},
    ],
)
async def test_invalid_doctor_is_400(
    client: httpx.AsyncClient, override: dict[str, object]
) -> None:
    response = await client.post("/api/v1/doctors/", json=doctor_payload(**override))
    assert response.status_code == 400, response.text
    assert response.json()["errors"]
    assert (await client.get("/api/v1/doctors/")).json() == []


async def test_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    first = await create_doctor(client, email="same@clinic.example")
    again = await client.post("/api/v1/doctors/", json=doctor_payload(email="SAME@clinic.example"))
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_email"
    other = await create_doctor(client)
    clash = await client.put(
        f"/api/v1/doctors/{other['id']}", json={"email": "same@clinic.example"}
    )
    assert clash.status_code == 409
    assert (await client.get(f"/api/v1/doctors/{first['id']}")).json() == first


async def test_list_filters_and_paging(client: httpx.AsyncClient) -> None:
    clinic = str(uuid.uuid4())
    a = await create_doctor(
        client,
        name="Alice Heart",
        specialization="Cardiology",
        languages=["English"],
        clinic_id=clinic,
    )
    b = await create_doctor(
        client,
        name="Bob Skin",
        specialization="Dermatology",
        languages=["Hindi", "Tamil"],
        consultation_type="video",
    )
    c = await create_doctor(
        client,
        name="Carol Heart",
        specialization="cardiology",
        languages=["hindi"],
        is_active=False,
    )

    async def names(query: str) -> list[str]:
        response = await client.get(f"/api/v1/doctors/?{query}")
        assert response.status_code == 200, response.text
        return [d["name"] for d in response.json()]

    assert await names("") == ["Alice Heart", "Bob Skin", "Carol Heart"]
    assert await names("specialization=CARDIOLOGY") == ["Alice Heart", "Carol Heart"]
    assert await names("language=HINDI") == ["Bob Skin", "Carol Heart"]
    assert await names("consultation_type=video") == ["Bob Skin"]
    assert await names("is_active=false") == ["Carol Heart"]
    assert await names(f"clinic_id={clinic}") == ["Alice Heart"]
    assert await names("name=heart") == ["Alice Heart", "Carol Heart"]
    assert await names("name=%25") == []
    assert await names("limit=1&offset=1") == ["Bob Skin"]
    assert {a["id"], b["id"], c["id"]} == {
        d["id"] for d in (await client.get("/api/v1/doctors")).json()
    }


async def test_partial_update(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    response = await client.put(
        f"/api/v1/doctors/{doctor['id']}",
        json={"experience_years": 12, "working_hours": {"start": "08:00", "end": "12:30"}},
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["experience_years"] == 12
    assert updated["working_hours"] == {"start": "08:00", "end": "12:30"}
    assert updated["name"] == doctor["name"]
    assert updated["specialization"] == doctor["specialization"]
    bad = await client.put(f"/api/v1/doctors/{doctor['id']}", json={"working_days": ["someday"]})
    assert bad.status_code == 400
    null = await client.put(f"/api/v1/doctors/{doctor['id']}", json={"name": None})
    assert null.status_code == 400
    missing = await client.put(f"/api/v1/doctors/{uuid.uuid4()}", json={"name": "X"})
    assert missing.status_code == 404


async def test_leaves_whole_and_partial_days(client: httpx.AsyncClient) -> None:
    doctor = await create_doctor(client)
    day = next_weekday(0)
    booked = await book(client, doctor["id"], day, "09:30")
    assert booked.status_code == 201
    base = f"/api/v1/doctors/{doctor['id']}/leaves"

    morning = await client.post(
        base,
        json={
            "date": day.isoformat(),
            "start_time": "09:00",
            "end_time": "12:00",
            "reason": "Conference",
        },
    )
    assert morning.status_code == 201, morning.text
    body = morning.json()
    assert body["start_time"] == "09:00" and body["end_time"] == "12:00"
    assert [a["id"] for a in body["affected_appointments"]] == [booked.json()["id"]]

    overlapping = await client.post(
        base, json={"date": day.isoformat(), "start_time": "11:00", "end_time": "13:00"}
    )
    assert overlapping.status_code == 409
    whole_same_day = await client.post(base, json={"date": day.isoformat()})
    assert whole_same_day.status_code == 409
    afternoon = await client.post(
        base, json={"date": day.isoformat(), "start_time": "12:00", "end_time": "13:00"}
    )
    assert afternoon.status_code == 201
    assert afternoon.json()["affected_appointments"] == []

    other_day = (day.replace(day=day.day)).isoformat()
    whole = await client.post(base, json={"date": next_weekday(2).isoformat()})
    assert whole.status_code == 201
    assert whole.json()["start_time"] is None
    duplicate = await client.post(base, json={"date": next_weekday(2).isoformat()})
    assert duplicate.status_code == 409
    half = await client.post(base, json={"date": other_day, "start_time": "10:00"})
    assert half.status_code == 400

    listed = (await client.get(base)).json()
    assert len(listed) == 3
    deleted = await client.delete(f"{base}/{whole.json()['id']}")
    assert deleted.status_code == 204
    assert (await client.delete(f"{base}/{whole.json()['id']}")).status_code == 404
    assert len((await client.get(base)).json()) == 2
    assert (
        await client.post(f"/api/v1/doctors/{uuid.uuid4()}/leaves", json={"date": day.isoformat()})
    ).status_code == 404
