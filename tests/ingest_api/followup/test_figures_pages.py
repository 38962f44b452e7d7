"""Figures people can read: the page's months are the rules' counts, the report downloads
encrypted with its reason audited, and the city's duplicate view is an independent count."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from datetime import date

import msoffcrypto
import psycopg
from openpyxl import load_workbook

from ingest_api.figures import rollup
from tests.helpers import sql_scalar
from tests.ingest_api.followup.conftest import TODAY, City

PW = "report-file-pw-9"
CELL = re.compile(r'<td class="n" data-figure="(\w+)">(\d+)</td>')


def refresh(url: str) -> None:
    """Bring the figures' rollup up to date (the service does it in the background)."""
    with psycopg.connect(url) as conn:
        rollup.refresh(conn)


def by_hand(url: str, program: str) -> dict[str, tuple[int, int, int]]:
    """Per month of this year: unique members, member-days and service days of a program,
    counted in Python over the raw taps (accepted only), by the attendance rule."""
    with psycopg.connect(url) as conn:
        taps = conn.execute(
            "SELECT member_ref, service_date FROM attendance_events"
            " WHERE program_id = %s AND outcome = 'accepted' AND member_ref IS NOT NULL",
            (program,),
        ).fetchall()
    persons: dict[str, set[str]] = defaultdict(set)
    visits: dict[str, set[tuple[str, date]]] = defaultdict(set)
    days: dict[str, set[date]] = defaultdict(set)
    for ref, day in taps:
        if day.year != TODAY.year:
            continue
        month = f"{day:%Y-%m}"
        persons[month].add(ref)
        visits[month].add((ref, day))
        days[month].add(day)
    return {m: (len(persons[m]), len(visits[m]), len(days[m])) for m in persons}


def month_cells(html: str, month: str) -> tuple[int, int, int]:
    """The three figures of one month's row of the figures table."""
    row = html.split(f'data-period="{month}"')[1].split("</tr>")[0]
    found = dict(CELL.findall(row))
    return int(found["unique_persons"]), int(found["person_visits"]), int(found["cases"])


def test_a_programs_and_a_teams_months_are_the_rules_counts(city: City) -> None:
    """The meal hall by month, as a program and as its team (the team runs only it)."""
    refresh(city.url)
    want = by_hand(city.url, "B-MEAL")
    assert want
    for query in ("level=program&program_id=B-MEAL", "level=team&team=지역복지팀"):
        page = city.client.get(f"/figures?{query}", headers=city.headers["staff.b"])
        assert page.status_code == 200
        for month in (f"{TODAY.year}-{m:02d}" for m in range(1, 13)):
            assert month_cells(page.text, month) == want.get(month, (0, 0, 0)), (query, month)
        assert 'id="chart-person_visits"' in page.text
        assert "회원01" not in page.text  # aggregates only
    # A's staff cannot look at B, and only the city's accounts see the whole city
    assert (
        city.client.get("/figures?facility_id=B", headers=city.headers["staff.a"]).status_code
        == 403
    )
    assert (
        city.client.get("/figures?level=city", headers=city.headers["staff.b"]).status_code == 403
    )
    whole = city.client.get("/figures?level=city", headers=city.headers["city.admin"])
    assert whole.status_code == 200
    assert "시 전체" in whole.text


def test_the_report_downloads_encrypted_with_the_reason_audited(city: City) -> None:
    """The quarterly report in the city's form from the page: an .xlsx that needs the password."""
    refresh(city.url)
    quarter = (TODAY.month - 1) // 3 + 1
    form = {
        "year": str(TODAY.year),
        "quarter": str(quarter),
        "format": "xlsx",
        "reason": "분기 실적 제출",
        "password": PW,
        "password_again": PW,
    }
    response = city.client.post("/figures/report", data=form, headers=city.headers["staff.b"])
    assert response.status_code == 200, response.text[:300]
    office = msoffcrypto.OfficeFile(io.BytesIO(response.content))
    office.load_key(password=PW)
    clear = io.BytesIO()
    office.decrypt(clear)
    text = " ".join(
        str(v) for row in load_workbook(clear).active.iter_rows(values_only=True) for v in row if v
    )
    assert "경로식당" in text
    assert (
        sql_scalar(
            city.url,
            "SELECT count(*) FROM audit_log WHERE action = 'download' AND actor = 'staff.b'"
            " AND reason = '분기 실적 제출'",
        )
        == 1
    )
    bad = {**form, "reason": "", "password_again": "different-pw"}
    refused = city.client.post("/figures/report", data=bad, headers=city.headers["staff.b"])
    assert refused.status_code == 400
    assert "다운로드 사유를" in refused.text
    assert "두 암호가 같지 않습니다." in refused.text


def test_statistics_page_counts_users_once(city: City) -> None:
    """Users of B this year: the distinct members who attended a counted program."""
    refresh(city.url)
    page = city.client.get(
        f"/figures/statistics?first_month={TODAY.year}-01&last_month={TODAY:%Y-%m}",
        headers=city.headers["manager.b"],
    )
    assert page.status_code == 200
    want = sql_scalar(
        city.url,
        "SELECT count(DISTINCT member_ref) FROM attendance_events WHERE facility_id = 'B'"
        " AND outcome = 'accepted' AND member_ref IS NOT NULL"
        " AND extract(year FROM service_date) = %s",
        TODAY.year,
    )
    assert f"<strong>{want}</strong>" in page.text


def test_the_duplicate_view_is_the_independent_count_for_the_city_only(city: City) -> None:
    """Persons served in one unit business by two centers (with consent), city admin only."""
    refresh(city.url)
    months = f"first_month={TODAY.year}-01&last_month={TODAY:%Y-%m}"
    page = city.client.get(f"/figures/duplicates?{months}", headers=city.headers["city.admin"])
    assert page.status_code == 200
    shown = set(re.findall(r'data-person="([^"]+)"', page.text))
    with psycopg.connect(city.url) as conn:
        want = {
            r[0]
            for r in conn.execute(
                "SELECT m.person_id FROM attendance_events e JOIN members m USING (member_ref)"
                " JOIN programs p ON p.program_id = e.program_id"
                " WHERE e.outcome = 'accepted' AND extract(year FROM e.service_date) = %s"
                " AND EXISTS (SELECT 1 FROM member_consents c WHERE c.member_ref = m.member_ref"
                "   AND c.kind = 'transfer' AND c.withdrawn_on IS NULL)"
                " GROUP BY m.person_id, p.unit_business HAVING count(DISTINCT p.facility_id) > 1",
                (TODAY.year,),
            )
        }
    assert len(want) == 1
    assert shown == want
    assert "회원01" not in page.text  # pseudonymous
    assert (
        sql_scalar(city.url, "SELECT count(*) FROM audit_log WHERE subject = 'figures:duplicates'")
        == 1
    )
    for who in ("manager.b", "staff.b"):
        refused = city.client.get(f"/figures/duplicates?{months}", headers=city.headers[who])
        assert refused.status_code == 403


def test_the_centers_months_stand_against_its_yearly_target(city: City) -> None:
    """B has no target of its own: its programs' person-visit targets add up (unique persons
    never do), pro rata per month and quarter, with the achievement rate."""
    refresh(city.url)
    yearly = sql_scalar(
        city.url,
        "SELECT sum(t.person_visits) FROM program_targets t JOIN programs p USING (program_id)"
        " WHERE p.facility_id = 'B' AND t.year = %s",
        TODAY.year,
    )
    assert yearly == 1500
    page = city.client.get("/figures", headers=city.headers["manager.b"]).text
    month = f"{TODAY:%Y-%m}"
    row = page.split(f'data-period="{month}"')[1].split("</tr>")[0]
    cells = re.findall(r'<td class="n[^"]*"[^>]*>([^<]*)</td>', row)
    # 실인원 (actual, target, rate), 연인원 (…), 건 (…)
    assert cells[1] == "—"  # no unique-person target for the center
    assert cells[4] == f"{yearly / 12:.0f}"
    visits = int(cells[3])
    assert cells[5] == f"{100 * visits / (yearly / 12):.1f}%"
    year_row = page.split(f'data-period="{TODAY.year}년"')[1].split("</tr>")[0]
    assert re.findall(r'<td class="n[^"]*"[^>]*>([^<]*)</td>', year_row)[4] == str(yearly)
