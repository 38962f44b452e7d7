"""The absence list for wellbeing calls: the same people as an independent SQL count, calls
recorded once, three unanswered calls flag the member, and a member who returns leaves it."""

from __future__ import annotations

import re
import uuid

import psycopg

from tests.helpers import sql_scalar
from tests.ingest_api.followup.conftest import TODAY, City, event, phone

# Independently of the product's query: a program's service days ranked newest first; a member
# last seen on the day ranked k has been absent k - 1 days; one never seen, every service day
# since enrolment. Absent = at least the program's threshold (3 for the meal hall, else 5).
EXPECTED = """
WITH ranked AS (
    SELECT program_id, service_date,
           rank() OVER (PARTITION BY program_id ORDER BY service_date DESC) AS k
    FROM (SELECT DISTINCT program_id, service_date FROM attendance_events
          WHERE facility_id = 'B' AND outcome = 'accepted') AS days
), last AS (
    SELECT member_ref, program_id, max(service_date) AS seen FROM attendance_events
    WHERE outcome = 'accepted' GROUP BY 1, 2
)
SELECT en.member_ref, en.program_id,
       coalesce((SELECT r.k - 1 FROM ranked r WHERE r.program_id = en.program_id
                 AND r.service_date = l.seen),
                (SELECT count(*) FROM ranked r WHERE r.program_id = en.program_id
                 AND r.service_date >= en.enrolled_on)) AS absent
FROM enrolments en JOIN members m USING (member_ref)
LEFT JOIN last l USING (member_ref, program_id)
WHERE m.facility_id = 'B' AND m.status = 'active' AND en.ended_on IS NULL
"""
THRESHOLD = {"B-MEAL": 3, "B-YOGA": 5}
ROW = re.compile(r'data-member="([^"]+)" data-days="(\d+)"')
PROGRAM_OF_ROW = re.compile(
    r'name="member_ref" value="([^"]+)">\s*<input type="hidden" name="program_id" value="([^"]+)"'
)


def expected(
    url: str, programs: tuple[str, ...] = ("B-MEAL", "B-YOGA")
) -> list[tuple[str, str, int]]:
    """(member, program, days absent) of everyone over their program's threshold."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(EXPECTED).fetchall()
    return sorted(
        (ref, pid, int(days))
        for ref, pid, days in rows
        if pid in programs and days >= THRESHOLD[pid]
    )


def listed(html: str) -> list[tuple[str, str, int]]:
    """(member, program, days) of the rows a page shows, in its order."""
    days = ROW.findall(html)
    programs = PROGRAM_OF_ROW.findall(html)
    assert len(days) == len(programs)
    return [(ref, pid, int(d)) for (ref, d), (_, pid) in zip(days, programs, strict=True)]


def call(city: City, who: str, ref: str, pid: str, outcome: str, **kw: str) -> int:
    """Record a call as `who`; the status of the answer."""
    data = {
        "member_ref": ref,
        "program_id": pid,
        "outcome": outcome,
        "call_id": kw.pop("call_id", str(uuid.uuid4())),
        **kw,
    }
    response = city.client.post(
        "/followup/absence/calls", data=data, headers=city.headers[who], follow_redirects=False
    )
    return int(response.status_code)


def test_the_list_is_the_independent_count_most_days_first(city: City) -> None:
    """Every member over their program's threshold, and only they, most days absent first."""
    want = expected(city.url)
    assert len(want) >= 4  # the city was built to have some absent, some not
    assert {p for _, p, _ in want} == {"B-MEAL", "B-YOGA"}
    page = city.client.get("/followup/absence", headers=city.headers["staff.b"])
    assert page.status_code == 200
    shown = listed(page.text)
    assert sorted(shown) == want
    assert [d for _, _, d in shown] == sorted((d for _, _, d in shown), reverse=True)
    # the deceased member, the ended enrolment and a member who keeps coming are not on it
    refs = {r for r, _, _ in shown}
    assert "B-M11" not in refs
    assert "B-M1" not in refs
    assert ("B-M10", "B-MEAL") not in {(r, p) for r, p, _ in shown}
    # viewing the list is audited
    assert (
        sql_scalar(
            city.url,
            "SELECT count(*) FROM audit_log WHERE subject = 'absence:B' AND actor = 'staff.b'",
        )
        == 1
    )


def test_staff_with_assigned_programs_see_only_theirs_and_other_centers_nothing(city: City) -> None:
    """Scope in the data layer: the yoga teacher sees yoga; A's staff see none of B's."""
    yoga = listed(city.client.get("/followup/absence", headers=city.headers["staff.b.yoga"]).text)
    assert sorted(yoga) == expected(city.url, ("B-YOGA",))
    a_page = city.client.get("/followup/absence", headers=city.headers["staff.a"])
    assert a_page.status_code == 200
    assert "B-M" not in a_page.text
    refused = city.client.get("/followup/absence?facility_id=B", headers=city.headers["staff.a"])
    assert refused.status_code == 403
    # the city's administrator reads no member records
    assert (
        city.client.get("/followup/absence", headers=city.headers["city.admin"]).status_code == 403
    )
    # B's staff cannot record a call to A's member (as if it did not exist; audited)
    assert call(city, "staff.b", "A-M1", "A-MEAL", "reached") == 404
    assert (
        sql_scalar(
            city.url,
            "SELECT count(*) FROM audit_log WHERE action = 'denied' AND subject = 'member:A-M1'",
        )
        == 1
    )


def test_calls_once_per_key_flag_after_three_unanswered_and_a_return_clears(city: City) -> None:
    """A double submit is one call; three unanswered calls flag; a new attendance removes."""
    ref, pid, _ = max(expected(city.url, ("B-MEAL",)), key=lambda r: r[2])
    key = str(uuid.uuid4())
    assert call(city, "staff.b", ref, pid, "not_reached", call_id=key) == 303
    assert call(city, "staff.b", ref, pid, "not_reached", call_id=key) == 303  # resent
    assert sql_scalar(city.url, "SELECT count(*) FROM absence_calls") == 1
    assert call(city, "staff.b", ref, pid, "not_reached") == 303
    page = city.client.get("/followup/absence", headers=city.headers["manager.b"]).text
    assert 'id="flagged"' not in page
    assert call(city, "staff.b", ref, pid, "not_reached", note="신호만 감") == 303
    page = city.client.get("/followup/absence", headers=city.headers["manager.b"]).text
    flagged = page.split('id="flagged"')[1].split("</section>")[0]
    assert ref in flagged
    assert "신호만 감" in page
    # the note is stored encrypted, never in clear
    assert (
        sql_scalar(
            city.url,
            "SELECT count(*) FROM absence_calls WHERE position('신호'::bytea IN note_enc) > 0",
        )
        == 0
    )
    # the member comes back today: off the list at once, the calls stay recorded
    with psycopg.connect(city.url) as conn, conn.cursor() as cur:
        from ingest_api.ingest.writes import insert_events

        insert_events(cur, rows=[event(TODAY, 0, "B", pid, ref, ticket=1)])
    shown = listed(city.client.get("/followup/absence", headers=city.headers["staff.b"]).text)
    assert (ref, pid) not in {(r, p) for r, p, _ in shown}
    assert sorted(shown) == expected(city.url)
    assert sql_scalar(city.url, "SELECT count(*) FROM absence_calls") == 3


def test_a_call_form_with_mistakes_comes_back_filled_in(city: City) -> None:
    """No outcome, or 'other' without a note: 400, a message per field, the note kept."""
    ref, pid, _ = expected(city.url, ("B-MEAL",))[0]
    data = {"member_ref": ref, "program_id": pid, "call_id": str(uuid.uuid4()), "note": "다시 걸기"}
    response = city.client.post(
        "/followup/absence/calls", data=data, headers=city.headers["staff.b"]
    )
    assert response.status_code == 400
    assert "통화 결과를 고르세요." in response.text
    assert "다시 걸기</textarea>" in response.text
    assert data["call_id"] in response.text  # the same key: a resend after fixing is one call
    other = {**data, "outcome": "other", "note": ""}
    response = city.client.post(
        "/followup/absence/calls", data=other, headers=city.headers["staff.b"]
    )
    assert response.status_code == 400
    assert "메모에 내용을 적으세요" in response.text
    assert sql_scalar(city.url, "SELECT count(*) FROM absence_calls") == 0


def test_the_list_masks_phones_and_the_manager_reveals_one_with_a_reason(city: City) -> None:
    """Staff see the last four digits; the manager sees the number after typing why (audited)."""
    ref, _, _ = expected(city.url)[0]
    page = city.client.get("/followup/absence", headers=city.headers["staff.b"]).text
    assert phone(ref) not in page
    assert f"***-****-{phone(ref)[-4:]}" in page
    assert "번호 보기" not in page  # staff have no reveal
    url = f"/followup/absence/phone?member_ref={ref}"
    assert (
        city.client.get(f"{url}&reason=안부전화", headers=city.headers["staff.b"]).status_code
        == 403
    )
    no_reason = city.client.get(url, headers=city.headers["manager.b"])
    assert no_reason.status_code == 400
    assert "사유" in no_reason.text
    shown = city.client.get(f"{url}&reason=안부전화", headers=city.headers["manager.b"])
    assert shown.status_code == 200
    assert phone(ref) in shown.text
    assert (
        sql_scalar(
            city.url,
            "SELECT count(*) FROM audit_log WHERE subject = %s AND reason = '안부전화'",
            f"member:{ref}:sensitive",
        )
        == 1
    )
    other = city.client.get(
        "/followup/absence/phone?member_ref=B-M1&reason=점검", headers=city.headers["manager.a"]
    )
    assert other.status_code == 404
