"""A member's rights: everything held about them, erasure that keeps the figures, consent."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from typing import Any

import msoffcrypto
import psycopg
import pyzipper
from openpyxl import load_workbook

from broker.ids import uuid7
from ingest_api.ingest.validation import EventRow
from ingest_api.ingest.writes import insert_events
from ingest_api.registry.rosters import roster_members
from tests.ingest_api.security.conftest import DAY, PHONES, World

FILE_PW = "rights-file-pw-1"


def _figures(world: World) -> Any:
    """B's figures of the day and of November by gender, as the city's administrator reads."""
    city = world.headers["city_admin"]
    assert world.client.post("/api/v1/figures/refresh", headers=city).status_code == 200
    daily = world.client.get(
        "/api/v1/figures/daily", params={"start": str(DAY), "facility_id": "B"}, headers=city
    ).json()
    by_gender = world.client.get(
        "/api/v1/figures/query",
        params={"first_month": "2026-11", "last_month": "2026-11", "dims": "gender,age_band"},
        headers=city,
    ).json()
    return daily, by_gender


def test_a_member_gets_everything_held_about_them(world: World) -> None:
    """The manager hands the member their record: clear fields, consents, attendances, and
    who looked at it (without the staff's account names)."""
    manager = world.headers["manager_b"]
    world.client.get("/api/v1/registry/members/B-M1", headers=world.headers["staff_b"])
    response = world.client.post(
        "/api/v1/registry/members/B-M1/rights/export",
        json={"reason": "본인 열람 요청", "password": FILE_PW},
        headers=manager,
    )
    assert response.status_code == 200
    with pyzipper.AESZipFile(io.BytesIO(response.content)) as archive:
        archive.setpassword(FILE_PW.encode())
        record = json.loads(archive.read("member_B-M1.json"))
    assert record["member"]["phone"] == PHONES["B-M1"]
    assert record["member"]["birth_date"] == "1941-05-09"
    assert record["member"]["main_needs"] == ["식사", "안부"]
    assert {c["kind"] for c in record["consents"]} == {"privacy", "transfer"}
    assert [(a["service_date"], a["program_id"]) for a in record["attendances"]] == [
        (str(DAY), "B-MEAL")
    ]
    assert [c["kind"] for c in record["credentials"]] == ["card"]
    assert "view" in [a["action"] for a in record["accesses"]]
    assert "staff.b" not in json.dumps(record)
    with psycopg.connect(world.url) as conn:
        audited = conn.execute(
            "SELECT actor, reason FROM audit_log WHERE action = 'download'"
            " AND subject = 'member:B-M1:record'"
        ).fetchall()
    assert audited == [("manager.b", "본인 열람 요청")]


def test_erasure_removes_the_person_and_keeps_the_figures(world: World) -> None:
    """After erasure: no name, phone, birth date, needs, consents or card; the attendance
    still counts (under a pseudonym) and every figure, by gender and age band too, is equal."""
    before = _figures(world)
    erased = world.client.post(
        "/api/v1/registry/members/B-ERASE/rights/erase",
        json={"reason": "본인 삭제 요청"},
        headers=world.headers["manager_b"],
    )
    assert erased.json() == {"attendances": 1, "enrolments": 1}
    assert _figures(world) == before
    manager = world.headers["manager_b"]
    assert world.client.get("/api/v1/registry/members/B-ERASE", headers=manager).status_code == 404
    again = world.client.post(
        "/api/v1/registry/members/B-ERASE/rights/erase", json={"reason": "x2"}, headers=manager
    )
    assert again.status_code == 404
    with psycopg.connect(world.url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM members WHERE member_ref = 'B-ERASE'"
        ).fetchone() == (0,)
        for table in ("member_credentials", "member_consents", "enrolments"):
            assert conn.execute(
                f"SELECT count(*) FROM {table} WHERE member_ref = 'B-ERASE'"  # noqa: S608 - fixed names
            ).fetchone() == (0,)
        (pseudonym,) = conn.execute(
            "SELECT member_ref FROM attendance_events WHERE facility_id = 'B'"
            " AND member_ref NOT IN ('B-M1')"
        ).fetchone() or ("",)
        left = conn.execute(
            "SELECT display_name, phone_enc, birth_date_enc, main_needs_enc, status,"
            " gender, birth_month FROM members WHERE member_ref = %s",
            (pseudonym,),
        ).fetchone()
        audit = conn.execute(
            "SELECT reason, detail::text FROM audit_log WHERE action = 'erase'"
        ).fetchall()
        roster = roster_members(conn, facility_id="B", program_ids=["B-MEAL"])
    assert pseudonym.startswith("X-")
    assert left == ("(삭제됨)", None, None, None, "erased", "F", date(1941, 5, 1))
    assert [m.member_ref for m in roster] == ["B-M1"]  # the card no longer opens anything
    assert len(audit) == 1
    assert audit[0][0] == "본인 삭제 요청"
    assert pseudonym not in audit[0][1]  # nothing links the pseudonym back


def test_withdrawing_the_consent_to_the_city_stops_the_provision(world: World) -> None:
    """A person at two centers shows in the city's duplicate-service view while both
    memberships consent to provision; withdrawn at one center, they are no longer provided."""
    manager = world.headers["manager_b"]
    city = world.headers["city_admin"]
    base = {
        "display_name": "김순자",  # A-M1's name and birth date: the same person
        "gender": "F",
        "birth_date": "1941-05-09",
        "programs": {"B-MEAL": None},
    }
    consents = [
        {"kind": "privacy", "granted_on": "2026-01-02"},
        {"kind": "transfer", "granted_on": "2026-01-02"},
    ]
    body = {"member_ref": "B-DUP", "facility_id": "B", **base, "consents": consents}
    assert (
        world.client.put("/api/v1/registry/members/B-DUP", json=body, headers=manager).status_code
        == 200
    )
    at = datetime(2026, 11, 20, 3, 5, tzinfo=UTC)
    with psycopg.connect(world.url) as conn, conn.cursor() as cur:
        insert_events(
            cur,
            rows=[
                EventRow(
                    uuid7(at),
                    at,
                    "B",
                    "meal-1",
                    DAY,
                    "B-MEAL",
                    "B-DUP",
                    "card",
                    "accepted",
                    9,
                    "v1",
                    None,
                )
            ],
        )

    def provided() -> list[list[str]]:
        world.client.post("/api/v1/figures/refresh", headers=city)
        found = world.client.get(
            "/api/v1/figures/duplicates",
            params={"first_month": "2026-11", "last_month": "2026-11"},
            headers=city,
        ).json()
        return [d["facilities"] for d in found]

    assert provided() == [["A", "B"]]
    consents[1]["withdrawn_on"] = "2026-11-21"
    assert world.client.put(
        "/api/v1/registry/members/B-DUP", json=body, headers=manager
    ).json() == {"change": "updated"}
    assert provided() == []


def test_the_incident_contact_list_and_the_member_list(world: World) -> None:
    """After an incident the manager takes everyone recorded at B that day, with phones, in an
    encrypted workbook; the member list masks phones unless asked."""
    manager = world.headers["manager_b"]
    response = world.client.post(
        "/api/v1/registry/contacts/export",
        json={"reason": "식중독 의심 연락", "password": FILE_PW, "day": str(DAY)},
        headers=manager,
    )
    assert response.status_code == 200
    office = msoffcrypto.OfficeFile(io.BytesIO(response.content))
    office.load_key(password=FILE_PW)
    clear = io.BytesIO()
    office.decrypt(clear)
    rows = [list(r) for r in load_workbook(clear).active.iter_rows(values_only=True)]
    assert rows[0][:3] == ["구분", "번호", "성명"]
    assert sorted((r[1], r[5]) for r in rows[1:]) == [
        ("B-ERASE", PHONES["B-ERASE"]),
        ("B-M1", PHONES["B-M1"]),
    ]
    listed = world.client.post(
        "/api/v1/registry/members/export",
        json={"reason": "명단 점검", "password": FILE_PW, "format": "csv"},
        headers=manager,
    )
    with pyzipper.AESZipFile(io.BytesIO(listed.content)) as archive:
        archive.setpassword(FILE_PW.encode())
        text = archive.read(archive.namelist()[0]).decode("utf-8-sig")
    assert "***-****-5926" in text
    assert PHONES["B-M1"] not in text
    assert "A-M1" not in text
