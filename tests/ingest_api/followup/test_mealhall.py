"""The meal hall, live: each sitting's served count, tickets and refusals are the taps
counted independently; the subsidised meals by day and month are one per member per day."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import psycopg

from ingest_api.figures import rollup
from ingest_api.ingest.writes import insert_events
from tests.helpers import sql_scalar
from tests.ingest_api.followup.conftest import TODAY, City, at, event, lunch_today

SITTING = re.compile(
    r'data-program="B-MEAL" data-served="(\d+)" data-tickets="(\d+)" data-refused="(\d+)"'
)


def test_the_live_sittings_are_the_taps_counted(city: City) -> None:
    """Per sitting: served, tickets and refused as an independent count of today's taps."""
    lunch_today(city.url)
    live = city.client.get("/mealhall/live", headers=city.headers["staff.b"])
    assert live.status_code == 200
    shown = [tuple(map(int, m)) for m in SITTING.findall(live.text)]

    def count(first: int, last: int, accepted: bool, ticket: bool = False) -> int:
        """Taps of B's meal hall today between two local hours."""
        return int(
            sql_scalar(
                city.url,
                "SELECT count(*) FROM attendance_events WHERE facility_id = 'B'"
                " AND service_date = %s AND occurred_at >= %s AND occurred_at < %s"
                " AND (outcome = 'accepted') = %s AND (NOT %s OR ticket_no IS NOT NULL)",
                TODAY,
                at(TODAY, first),
                at(TODAY, last),
                accepted,
                ticket,
            )
        )

    assert shown == [
        (count(11, 12, True), count(11, 12, True, True), count(11, 12, False)),
        (count(12, 13, True), count(12, 13, True, True), count(12, 13, False)),
    ]
    assert shown[0][0] == 5  # over capacity is shown, not capped
    assert not re.search(r"B-M\d", live.text)  # aggregates only: no member number
    page = city.client.get("/mealhall", headers=city.headers["staff.b"])
    assert 'hx-get="/mealhall/live' in page.text
    assert "5</span> / 4명" in page.text


def test_the_subsidised_meals_are_one_per_member_per_day(city: City) -> None:
    """The day's and the month's meals: distinct (member, day) of accepted taps."""
    lunch_today(city.url)
    page = city.client.get("/mealhall", headers=city.headers["manager.b"]).text
    table = page.split('id="meals-by-day"')[1].split("</table>")[0]
    days = re.findall(r'data-day="([\d-]+)">.*?data-program="B-MEAL">(\d+)<', table)
    assert len(days) == TODAY.day
    for day, shown in days:
        want = sql_scalar(
            city.url,
            "SELECT count(DISTINCT member_ref) FROM attendance_events WHERE program_id = 'B-MEAL'"
            " AND outcome = 'accepted' AND service_date = %s",
            date.fromisoformat(day),
        )
        assert int(shown) == want, day
    month_want = sql_scalar(
        city.url,
        "SELECT count(DISTINCT (member_ref, service_date)) FROM attendance_events"
        " WHERE program_id = 'B-MEAL' AND outcome = 'accepted'"
        " AND date_trunc('month', service_date) = date_trunc('month', %s::date)",
        TODAY,
    )
    total = re.search(r'data-program="B-MEAL" data-month-total="1"><strong>(\d+)<', table)
    assert total is not None
    assert int(total.group(1)) == month_want
    assert f'data-month="{TODAY:%Y-%m}">{month_want}<' in page


def test_refusals_name_member_numbers_only_for_who_reads_members_and_are_audited(
    city: City,
) -> None:
    """B's staff see today's refused taps (audited); the city's administrator cannot."""
    lunch_today(city.url)
    listed = city.client.get("/mealhall/refusals", headers=city.headers["staff.b"])
    assert listed.status_code == 200
    assert "B-M2" in listed.text
    assert "오늘 이미 식사함" in listed.text
    assert "등록되지 않은 카드" in listed.text
    assert (
        sql_scalar(city.url, "SELECT count(*) FROM audit_log WHERE subject LIKE 'mealhall:B:%%'")
        == 1
    )
    # the yoga teacher is assigned to yoga only: the meal hall's refusals are not theirs
    yoga = city.client.get("/mealhall/refusals", headers=city.headers["staff.b.yoga"])
    assert yoga.status_code == 200
    assert "B-M2" not in yoga.text
    refused = city.client.get(
        "/mealhall/refusals?facility_id=B", headers=city.headers["city.admin"]
    )
    assert refused.status_code == 403
    other = city.client.get("/mealhall/live?facility_id=B", headers=city.headers["staff.a"])
    assert other.status_code == 403


def test_a_member_served_twice_while_the_kiosks_were_apart_is_shown_to_staff(
    city: City,
) -> None:
    """Two kiosks that could not talk both served B-M3: the second serve is listed (audited),
    the first is not, and the yoga teacher (another program) does not see it."""
    lunch_today(city.url)
    second = replace(event(TODAY, 5, "B", "B-MEAL", "B-M3", ticket=57), device_id="meal-2")
    with psycopg.connect(city.url) as conn, conn.cursor() as cur:
        insert_events(cur, rows=[second])
    page = city.client.get("/mealhall/refusals", headers=city.headers["staff.b"])
    assert page.status_code == 200
    listed = page.text.split('id="double-serve-list"', 1)[1]
    rows = [r for r in listed.split("<tr>")[2:] if "<td>" in r]
    for text in ("B-M3", "meal-2", "meal-1", "57"):
        assert text in rows[0]
    want = sql_scalar(
        city.url,
        "SELECT count(*) FROM (SELECT member_ref FROM attendance_events"
        " WHERE facility_id = 'B' AND program_id = 'B-MEAL' AND service_date = %s"
        " AND outcome = 'accepted' GROUP BY member_ref HAVING count(*) > 1) AS t",
        TODAY,
    )
    assert len(rows) == want == 1
    yoga = city.client.get("/mealhall/refusals", headers=city.headers["staff.b.yoga"])
    assert "B-M3" not in yoga.text.split('id="double-serve-list"', 1)[1]


def test_the_days_meals_follow_a_refresh_of_the_figures(city: City) -> None:
    """A meal served after the page was read is in the day's count once the rollup has it."""
    lunch_today(city.url)

    def today_cell() -> int:
        """Today's meals of B's meal hall as the page shows them."""
        page = city.client.get("/mealhall", headers=city.headers["staff.b"]).text
        found = re.search(rf'data-day="{TODAY}">.*?data-program="B-MEAL">(\d+)<', page)
        assert found is not None
        return int(found.group(1))

    before = today_cell()
    with psycopg.connect(city.url) as conn:
        with conn.cursor() as cur:
            insert_events(cur, rows=[event(TODAY, 30, "B", "B-MEAL", "B-M12", ticket=9)])
        rollup.refresh(conn)
    assert today_cell() == before + 1
