"""The incident contact list over a time window: the same people as an independent SQL count,
with members' phones, for B's manager only, the reason audited, the file encrypted."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import psycopg
import pyzipper

from tests.helpers import sql_scalar
from tests.ingest_api.followup.conftest import TODAY, City, at, phone

PW = "incident-file-pw-7"
DAY = TODAY - timedelta(days=2)


def form(**kw: str) -> dict[str, str]:
    """The contact list form for lunch two days ago, 11:35 to 11:55 (a part of the meal)."""
    return {
        "start": f"{DAY}T11:35",
        "end": f"{DAY}T11:55",
        "reason": "식중독 의심, 보건소 요청",
        "password": PW,
        "password_again": PW,
        "format": "csv",
        **kw,
    }


def test_the_window_lists_the_independent_count_with_phones(city: City) -> None:
    """Everyone recorded at B in the window (members, refused taps and visitors alike)."""
    response = city.client.post(
        "/followup/contacts", data=form(), headers=city.headers["manager.b"]
    )
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/zip"
    with pyzipper.AESZipFile(io.BytesIO(response.content)) as archive:
        archive.setpassword(PW.encode())
        text = archive.read(archive.namelist()[0]).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["구분", "번호", "성명"]
    with psycopg.connect(city.url) as conn:
        want = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT coalesce(member_ref, visitor->>'visitor_code') FROM"
                " attendance_events WHERE facility_id = 'B' AND occurred_at >= %s"
                " AND occurred_at < %s AND coalesce(member_ref, visitor->>'visitor_code')"
                " IS NOT NULL",
                (at(DAY, 11, 35), at(DAY, 11, 55)),
            )
        }
    assert len(want) >= 3
    assert {r[1] for r in rows[1:]} == want
    assert len(rows) - 1 == len(want)  # one row per person
    members = [r for r in rows[1:] if r[0] == "회원"]
    assert members
    assert all(r[5] == phone(r[1]) for r in members)
    assert any(r[0] == "일시이용" for r in rows[1:])  # the visitor
    assert "A-M1" not in text
    assert (
        sql_scalar(
            city.url,
            "SELECT count(*) FROM audit_log WHERE action = 'download' AND actor = 'manager.b'"
            " AND subject LIKE 'contacts:B:%%' AND reason = '식중독 의심, 보건소 요청'",
        )
        == 1
    )


def test_only_the_centers_manager_may_take_it(city: City) -> None:
    """Staff, the city and another center's manager are refused, and nothing is audited."""
    for who, facility, status in (
        ("staff.b", "", 403),
        ("city.admin", "B", 403),
        ("manager.a", "B", 403),
    ):
        response = city.client.post(
            "/followup/contacts", data=form(facility_id=facility), headers=city.headers[who]
        )
        assert response.status_code == status, who
        page = city.client.get("/followup/contacts?facility_id=B", headers=city.headers[who])
        assert page.status_code == 403, who
    assert sql_scalar(city.url, "SELECT count(*) FROM audit_log WHERE action = 'download'") == 0


def test_a_form_with_mistakes_says_what_to_fix_and_keeps_what_was_typed(city: City) -> None:
    """No reason, different passwords, a window ending before it starts: 400, a message each."""
    bad = form(reason="", password_again="something-else", end=f"{DAY}T11:00")
    response = city.client.post("/followup/contacts", data=bad, headers=city.headers["manager.b"])
    assert response.status_code == 400
    assert "다운로드 사유를" in response.text
    assert "끝 일시는 시작 일시보다 뒤여야 합니다." in response.text
    assert f'value="{DAY}T11:35"' in response.text  # what was typed is kept
    short = form(password="short", password_again="short")
    response = city.client.post("/followup/contacts", data=short, headers=city.headers["manager.b"])
    assert response.status_code == 400
    assert "8자 이상" in response.text
    assert 'value="식중독 의심, 보건소 요청"' in response.text
    assert sql_scalar(city.url, "SELECT count(*) FROM audit_log WHERE action = 'download'") == 0
