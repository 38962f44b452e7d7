"""Registry API: programs with rules and targets, members with hashed cards, audited reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from broker.hashing import credential_hash
from broker.keys import facility_key
from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.main import create_app
from tests.security_helpers import DATA_KEY, add_account, session_headers

KEY = "registry-api-test-key-0123456789"
STAFF: dict[str, str] = {}  # the manager of center E, signed in (set by the fixture)
PROGRAM = {
    "program_id": "E-MEAL",
    "facility_id": "E",
    "name": "경로식당 점심",
    "function": "service_provision",
    "business_area": "지역사회보호",
    "unit_business": "급식지원서비스",
    "fee_type": "free",
    "capacity": 200,
    "cycle": "주6회",
    "place": "경로식당",
    "year": 2026,
    "targets": {
        "unique_persons": 250,
        "person_visits": 48000,
        "cases": 300,
        "unique_persons_male": 90,
        "unique_persons_female": 160,
    },
    "team": "지역복지팀",
    "manager": "김은정",
    "indicator": "경로식당 식사 이용 연인원",
    "operating_form": "상시",
}
MEMBER = {
    "member_ref": "E-M00001",
    "facility_id": "E",
    "display_name": "홍길순",
    "gender": "F",
    "birth_date": "1941-05-09",
    "recipient": True,
    "phone": "010-2345-6789",
    "neighbourhood": "우만2동",
    "main_needs": ["식사", "안부"],
    "consents": [
        {"kind": "privacy", "granted_on": "2026-01-02"},
        {"kind": "transfer", "granted_on": "2026-01-02"},
    ],
    "card_uids": ["04:A1:B2:C3"],
    "programs": {"E-MEAL": None},
}


@pytest.fixture
def client(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The registry router with keys from the environment; E's manager signed in."""
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", KEY)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    app = create_app(Settings(database_url=database_url, refresh_interval_s=0), consume=False)
    add_account(database_url, "city.kim", Role.CITY_ADMIN)
    city = session_headers(database_url, "city.kim")
    with TestClient(app) as c:
        assert (
            c.put(
                "/api/v1/registry/facilities/E",
                json={"facility_id": "E", "name": "푸른마을사회복지관"},
                headers=city,
            ).status_code
            == 200
        )
        add_account(database_url, "lee.sw", Role.CENTER_MANAGER, facility_id="E")
        c.headers.update(session_headers(database_url, "lee.sw"))
        yield c


def test_program_with_rule_and_targets(client: TestClient) -> None:
    """A program is stored with its hierarchy, default counting rule and yearly targets."""
    assert client.put("/api/v1/registry/programs/E-MEAL", json=PROGRAM).json() == {
        "change": "inserted"
    }
    assert client.put("/api/v1/registry/programs/E-MEAL", json=PROGRAM).json() == {
        "change": "unchanged"
    }
    listed = client.get("/api/v1/registry/programs", params={"facility_id": "E", "year": 2026})
    (program,) = listed.json()
    assert program["rule_id"] == "attendance"
    assert program["targets"] == PROGRAM["targets"]
    for field in ("team", "manager", "indicator", "operating_form"):
        assert program[field] == PROGRAM[field]
    rules = {r["rule_id"]: r for r in client.get("/api/v1/registry/rules").json()}
    assert (rules["practicum"]["visit_unit"], rules["practicum"]["case_unit"]) == (
        "member_day",
        "session_day",
    )
    bad = {**PROGRAM, "program_id": "E-X", "rule_id": "no_such_rule"}
    assert client.put("/api/v1/registry/programs/E-X", json=bad).status_code == 400


def test_a_program_id_no_kiosk_message_could_carry_is_refused(
    client: TestClient, database_url: str
) -> None:
    """One id rule: the registry refuses what the wire contract refuses, in the API and below."""
    long_id = "E-" + "X" * 38  # 40 characters: fits no MQTT message of the contract
    answer = client.put(
        f"/api/v1/registry/programs/{long_id}", json={**PROGRAM, "program_id": long_id}
    )
    assert answer.status_code == 422
    assert "program_id" in answer.text
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO programs (program_id, facility_id, name, function, business_area,"
            " unit_business, fee_type)"
            " VALUES (%s, 'E', 'x', 'service_provision', 'a', 'u', 'free')",
            (long_id,),
        )


def test_member_card_is_hashed_and_reads_are_audited(client: TestClient, database_url: str) -> None:
    """The card UID is stored only as its keyed hash; views and sensitive reads are audited."""
    client.put("/api/v1/registry/programs/E-MEAL", json=PROGRAM)
    assert (
        client.put("/api/v1/registry/members/E-M00001", json={**MEMBER, "gender": "X"}).status_code
        == 422
    )
    # No registration without the required consents, as at the desk: said, nothing recorded.
    unsigned = {**MEMBER, "consents": [{"kind": "privacy", "granted_on": "2026-01-02"}]}
    refused = client.put("/api/v1/registry/members/E-M00001", json=unsigned, headers=STAFF)
    assert refused.status_code == 422
    assert "transfer" in refused.json()["detail"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM members").fetchone() == (0,)
    put = client.put("/api/v1/registry/members/E-M00001", json=MEMBER, headers=STAFF)
    assert put.json() == {"change": "inserted"}
    member = client.get("/api/v1/registry/members/E-M00001", headers=STAFF).json()
    assert member["phone_masked"] == "***-****-6789"
    assert member["birth_year"] == 1941
    assert "birth_date" not in member
    assert member["credential_count"] == 1
    assert member["programs"] == {"E-MEAL": None}
    assert (
        client.get("/api/v1/registry/members/E-M00001/sensitive", headers=STAFF).status_code == 422
    )  # no reason
    sensitive = client.get(
        "/api/v1/registry/members/E-M00001/sensitive", params={"reason": "안부전화"}, headers=STAFF
    ).json()
    assert sensitive["phone"] == "010-2345-6789"
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT credential_hash FROM member_credentials").fetchall()
        audit = conn.execute(
            "SELECT actor, action, subject, reason FROM audit_log"
            " WHERE starts_with(subject, 'member:') ORDER BY audit_id"
        ).fetchall()
    e_key = facility_key(KEY.encode(), facility_id="E", version=1).encode()
    assert stored == [(credential_hash("04A1B2C3", key=e_key),)]
    assert audit == [
        ("lee.sw", "change", "member:E-M00001", None),
        ("lee.sw", "view", "member:E-M00001", None),
        ("lee.sw", "view", "member:E-M00001:sensitive", "안부전화"),
    ]


def test_status_visitors_and_contacts(client: TestClient, database_url: str) -> None:
    """Moving out changes the status; visitors and contacts keep only the minimal fields."""
    client.put("/api/v1/registry/programs/E-MEAL", json=PROGRAM)
    client.put("/api/v1/registry/members/E-M00001", json=MEMBER, headers=STAFF)
    moved = client.post(
        "/api/v1/registry/members/E-M00001/status", json={"status": "moved_out"}, headers=STAFF
    )
    assert moved.json() == {"changed": True}
    assert client.get("/api/v1/registry/members/E-M00001", headers=STAFF).json()["status"] == (
        "moved_out"
    )
    visitor = {
        "visitor_code": "V-E-20261122-0001",
        "facility_id": "E",
        "gender": "M",
        "age_band": "75-79",
        "neighbourhood": "우만1동",
        "purpose": "경로식당 일시이용",
    }
    assert client.post("/api/v1/registry/visitors", json=visitor, headers=STAFF).status_code == 201
    bad_band = {**visitor, "visitor_code": "V-E-20261122-0002", "age_band": "76"}
    assert client.post("/api/v1/registry/visitors", json=bad_band, headers=STAFF).status_code == 422
    contact = {
        "contact_code": "C-E-0001",
        "facility_id": "E",
        "program_id": "E-NOPE",
        "gender": "F",
        "age_band": "80-84",
        "neighbourhood": "우만2동",
        "place": "경로당",
        "met_at": "2026-11-20T14:00:00+09:00",
        "needs": "안부확인",
    }
    assert client.post("/api/v1/registry/contacts", json=contact, headers=STAFF).status_code == 400
    contact["program_id"] = "E-MEAL"
    assert client.post("/api/v1/registry/contacts", json=contact, headers=STAFF).status_code == 201
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT service_date::text FROM community_contacts").fetchone()
    assert row == ("2026-11-20",)


def test_import_through_the_api(client: TestClient, tmp_path: Any) -> None:
    """The members list posted as the body is validated and imported; junk is a 400."""
    client.put("/api/v1/registry/programs/E-MEAL", json=PROGRAM)
    body = "회원번호,성명,성별,이용프로그램\nE-M1,김옥순,여,E-MEAL\nE-M2,박순자,모름,E-MEAL\n"
    params = {"facility_id": "E", "filename": "members.csv"}
    result = client.post(
        "/api/v1/registry/import/members", params=params, content=body.encode(), headers=STAFF
    ).json()
    assert result["ok"] is False
    assert [(i["row"], i["cell"]) for i in result["issues"]] == [(3, "C3")]
    good = body.replace("모름", "여")
    result = client.post(
        "/api/v1/registry/import/members", params=params, content=good.encode(), headers=STAFF
    ).json()
    assert (result["ok"], result["inserted"]) == (True, 2)
    junk = client.post(
        "/api/v1/registry/import/members",
        params={"facility_id": "E", "filename": "m.xlsx"},
        content=b"not a workbook",
        headers=STAFF,
    )
    assert junk.status_code == 400
