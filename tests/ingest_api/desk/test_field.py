"""Tablets in the field and services recorded by staff: visitors get a personal ID code (QR,
printable, reused when they return); a resident met twice is two records; a service counts in
its program's figures by the program's rule, checked against an independent count."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from broker.const import DEFAULT_TIMEZONE
from ingest_api.figures import rollup
from ingest_api.figures.engine import Period, Scope, compute
from ingest_api.registry import services
from tests.helpers import count_by_rules
from tests.ingest_api.desk.conftest import World, form_key_of
from tests.security_helpers import CIPHER, DATA_KEY

HTML = {"Accept": "text/html"}
TZ = ZoneInfo(DEFAULT_TIMEZONE)


def _h(world: World, who: str = "staff_b") -> dict[str, str]:
    """A browser's headers for one of the world's accounts."""
    return {**world.headers[who], **HTML}


def _local(at: datetime) -> str:
    """As a datetime-local field sends it."""
    return at.astimezone(TZ).strftime("%Y-%m-%dT%H:%M")


def test_a_visitor_gets_a_code_with_a_qr_and_a_returning_visitor_reuses_it(
    desk_world: World,
) -> None:
    """Gender, age band, neighbourhood, purpose → a code of the day (beside the kiosks'
    numbers), shown with a QR code; sent twice, one visitor; the code finds them again."""
    c = desk_world.client
    h = _h(desk_world)
    form = c.get("/field/visitors", headers=h)
    key = form_key_of(form.text)
    bad = c.post(
        "/field/visitors",
        data={
            "form_key": key,
            "gender": "",
            "age_band": "100+",
            "neighbourhood": "",
            "purpose": "상담",
        },
        headers=h,
    )
    assert bad.status_code == 422
    for message in ("성별을 선택하세요", "연령대: 목록에 있는", "거주 동을 입력하세요"):
        assert message in bad.text
    assert 'value="상담"' in bad.text
    data = {
        "form_key": key,
        "gender": "M",
        "age_band": "70-74",
        "neighbourhood": "우만1동",
        "purpose": "상담 문의",
    }
    sent = [c.post("/field/visitors", data=data, headers=h, follow_redirects=False) for _ in "ab"]
    assert sent[0].headers["location"] == sent[1].headers["location"]
    today = datetime.now(TZ).date()
    code = f"V-B-{today:%Y%m%d}-5001"
    assert sent[0].headers["location"] == f"/field/visitors/{code}?new=1"
    card = c.get(sent[0].headers["location"], headers=h)
    assert card.status_code == 200
    assert code in card.text
    assert "<svg" in card.text
    assert "<path" in card.text
    again = c.get(f"/field/visitors?code={code.lower()}", headers=h, follow_redirects=False)
    assert again.headers["location"] == f"/field/visitors/{code}"
    nope = c.get("/field/visitors?code=V-B-20200101-0001", headers=h)
    assert nope.status_code == 422
    assert "등록된 방문자 코드가 아닙니다" in nope.text
    second = c.post(
        "/field/visitors",
        data={**data, "form_key": form_key_of(c.get("/field/visitors", headers=h).text)},
        headers=h,
        follow_redirects=False,
    )
    assert second.headers["location"].startswith(f"/field/visitors/V-B-{today:%Y%m%d}-5002")
    with psycopg.connect(desk_world.url) as conn:
        rows = conn.execute(
            "SELECT visitor_code, gender, age_band, neighbourhood, purpose FROM visitors"
            " WHERE facility_id = 'B' ORDER BY 1"
        ).fetchall()
    assert rows[0] == (code, "M", "70-74", "우만1동", "상담 문의")
    assert len(rows) == 2


def test_a_second_meeting_with_a_resident_is_a_second_record(desk_world: World) -> None:
    """The same code met twice: two rows (never dropped), one person in the figures' persons;
    a form sent twice: one row; needs stored only encrypted."""
    c = desk_world.client
    h = _h(desk_world)
    now = datetime.now(TZ)
    page = c.get("/field/contacts", headers=h)
    assert page.status_code == 200
    code = f"C-B-{now:%Y%m%d}-001"
    assert f'value="{code}"' in page.text
    data = {
        "form_key": form_key_of(page.text),
        "contact_code": code,
        "gender": "F",
        "age_band": "80-84",
        "neighbourhood": "우만2동",
        "place": "경로당",
        "met_at": _local(now - timedelta(hours=2)),
        "program_id": "B-ORG",
        "needs": "반찬 지원 필요",
    }
    for _ in range(2):
        assert (
            c.post("/field/contacts", data=data, headers=h, follow_redirects=False).status_code
            == 303
        )
    again = c.get(f"/field/contacts?code={code}", headers=h)
    assert 'value="80-84" selected' in again.text
    future = {
        **data,
        "form_key": form_key_of(again.text),
        "met_at": _local(now + timedelta(days=1)),
    }
    refused = c.post("/field/contacts", data=future, headers=h)
    assert refused.status_code == 422
    assert "만난 시각이 지금보다 뒤입니다" in refused.text
    assert "반찬 지원 필요" in refused.text
    second = {**future, "met_at": _local(now - timedelta(hours=1)), "place": "놀이터"}
    assert (
        c.post("/field/contacts", data=second, headers=h, follow_redirects=False).status_code == 303
    )
    with psycopg.connect(desk_world.url) as conn:
        rows = conn.execute(
            "SELECT place, needs_enc FROM community_contacts WHERE contact_code = %s"
            " ORDER BY met_at",
            (code,),
        ).fetchall()
        persons = conn.execute(
            "SELECT count(*) FROM figures_persons WHERE person_ref = %s", (code,)
        ).fetchone()
    assert [r[0] for r in rows] == ["경로당", "놀이터"]
    assert all(b"\xeb\xb0\x98\xec\xb0\xac" not in bytes(r[1]) for r in rows)  # "반찬"
    assert (
        CIPHER.open_text(rows[0][1], context=f"community_contacts.needs:{code}") == "반찬 지원 필요"
    )
    assert persons == (1,)


def test_a_recorded_service_counts_by_its_programs_rule(desk_world: World) -> None:
    """Counselling, a phone check and a home visit (rule `consultation`) and network meetings
    (rule `network`) recorded on the page are in the figures by their rules: the engine agrees
    with the independent count and with the numbers worked out here by hand."""
    c = desk_world.client
    h = _h(desk_world)
    now = datetime.now(TZ)
    today, yesterday = now - timedelta(minutes=30), now - timedelta(days=1)
    entries = [
        ("counselling", "B-CARE", "member", "B-M1", today),
        ("phone_check", "B-CARE", "member", "B-M1", today - timedelta(minutes=20)),
        ("home_visit", "B-CARE", "member", "B-M2", yesterday),
        ("network_meeting", "B-ORG", "group", "우만동 주민협의체", today),
        ("network_meeting", "B-ORG", "group", "우만동 주민협의체", yesterday),
        ("case_meeting", "B-ORG", "group", "통합사례회의", today - timedelta(minutes=5)),
    ]
    for kind, program, target, who, at in entries:
        page = c.get("/services", headers=h)
        data = {
            "form_key": form_key_of(page.text),
            "kind": kind,
            "program_id": program,
            "target": target,
            "member_ref" if target == "member" else "group_name": who,
            "occurred_at": _local(at),
            "note": "혈압약 복용 확인",
        }
        answer = c.post("/services", data=data, headers=h, follow_redirects=False)
        assert answer.status_code == 303, answer.text[:300]
    bad = c.post(
        "/services",
        data={
            "form_key": form_key_of(c.get("/services", headers=h).text),
            "kind": "counselling",
            "program_id": "B-CARE",
            "target": "member",
            "member_ref": "A-M1",
            "occurred_at": _local(today),
        },
        headers=h,
    )
    assert bad.status_code == 422
    assert "담당 범위에 그 번호의 회원이 없습니다" in bad.text
    first = min(at for *_, at in entries).date()
    with psycopg.connect(desk_world.url) as conn:
        rollup.refresh(conn)
        figures = {
            r.key["program"]: (r.unique_persons, r.person_visits, r.cases)
            for r in compute(
                conn,
                periods=[Period("services", first, now.date())],
                dims=("program",),
                scope=Scope(facility_id="B"),
            )
        }
        notes = conn.execute(
            "SELECT count(*) FROM service_records WHERE note_enc IS NOT NULL"
        ).fetchone()
    # By hand: consultation = one case and one person-visit per person and day (B-M1 twice on
    # one day counts once); network = one case per day of activity, no persons.
    assert figures["B-CARE"] == (2, 2, 2)
    assert figures["B-ORG"] == (0, 0, 2 if yesterday.date() != today.date() else 1)
    independent = count_by_rules(desk_world.url)
    assert independent[("B", "B-CARE")] == figures["B-CARE"][:2]
    assert independent.get(("B", "B-ORG"), (0, 0)) == figures["B-ORG"][:2]
    assert notes == (6,)


def test_a_returning_visitor_is_counted_once_under_their_code(desk_world: World) -> None:
    """A visitor registered for the meal program and coming back the next days under the same
    code: one unique person, one person-visit per day; the same day twice counts once."""
    c = desk_world.client
    h = _h(desk_world)
    form = c.get("/field/visitors", headers=h)
    registered = c.post(
        "/field/visitors",
        data={
            "form_key": form_key_of(form.text),
            "gender": "F",
            "age_band": "75-79",
            "neighbourhood": "우만1동",
            "program_id": "B-MEAL",
        },
        headers=h,
        follow_redirects=False,
    )
    code = registered.headers["location"].split("/")[-1].split("?")[0]
    card = c.get(f"/field/visitors/{code}", headers=h)
    again = c.post(
        f"/field/visitors/{code}/visits",
        data={"form_key": form_key_of(card.text), "program_id": "B-MEAL"},
        headers=h,
        follow_redirects=False,
    )
    assert again.headers["location"].endswith("visited=0")  # today's visit is already there
    bad = c.post(
        f"/field/visitors/{code}/visits",
        data={"form_key": form_key_of(card.text), "program_id": "A-MEAL"},
        headers=h,
    )
    assert bad.status_code == 422
    assert "방문 프로그램: 목록에 있는 값을 선택하세요" in bad.text
    # Two earlier days' visits, as the page records them on those days.
    with psycopg.connect(desk_world.url) as conn:
        visitor = services.find_visitor(conn, visitor_code=code, facility_id="B")
        assert visitor is not None
        for days in (1, 2):
            assert services.record_visit(
                conn,
                visitor=visitor,
                program_id="B-MEAL",
                at=datetime.now(TZ) - timedelta(days=days),
                timezone=DEFAULT_TIMEZONE,
            )
        rollup.refresh(conn)
        first = (datetime.now(TZ) - timedelta(days=2)).date()
        row = compute(
            conn,
            periods=[Period("visits", first, datetime.now(TZ).date())],
            dims=("program",),
            scope=Scope(program_id="B-MEAL"),
        )
    assert [(r.unique_persons, r.person_visits) for r in row] == [(1, 3)]
    assert count_by_rules(desk_world.url)[("B", "B-MEAL")][0] == 3  # + the world's 2 members
    assert "기록된 방문이 없습니다" not in c.get(f"/field/visitors/{code}", headers=h).text


def test_key_rotation_and_erasure_keep_meetings_and_notes_apart(desk_world: World) -> None:
    """Two meetings of one resident with different needs, and a service note: a key rotation
    re-encrypts each row by itself (nothing is copied onto the other meeting); erasing the
    member takes the note and their number off the service, and the figures keep it."""
    from ingest_api.core import rotation
    from ingest_api.core.fieldcrypto import FieldCipher
    from ingest_api.registry import rights, store
    from ingest_api.registry.models import ContactIn

    now = datetime.now(TZ)
    with psycopg.connect(desk_world.url) as conn:
        for hours, needs in ((3, "반찬"), (2, "병원 동행")):
            store.register_contact(
                conn,
                contact=ContactIn(
                    contact_code="C-B-20261101-001",
                    facility_id="B",
                    program_id="B-ORG",
                    gender="F",
                    age_band="80-84",
                    neighbourhood="우만2동",
                    place="경로당",
                    met_at=now - timedelta(hours=hours),
                    needs=needs,
                ),
                cipher=CIPHER,
            )
        services.record_service(
            conn,
            service=services.ServiceIn(
                facility_id="B",
                program_id="B-CARE",
                kind=services.ServiceKind.HOME_VISIT,
                occurred_at=now - timedelta(hours=1),
                member_ref="B-ERASE",
                group_name=None,
                note="치매 의심, 가족 연락",
            ),
            actor="staff.b",
            cipher=CIPHER,
            timezone=DEFAULT_TIMEZONE,
        )
        fresh = FieldCipher([b"a-brand-new-data-key-0123456789abcdef", DATA_KEY.encode()])
        assert rotation.rotate(conn, cipher=fresh).rotated >= 3
        kept = [
            services.meeting_needs(conn, contact_id=int(r[0]), cipher=fresh)
            for r in conn.execute(
                "SELECT contact_id FROM community_contacts WHERE contact_code = %s ORDER BY met_at",
                ("C-B-20261101-001",),
            )
        ]
        (service_id,) = conn.execute("SELECT service_id FROM service_records").fetchone() or (0,)
        assert (
            services.service_note(conn, service_id=service_id, cipher=fresh)
            == "치매 의심, 가족 연락"
        )
        rights.erase_member(conn, member_ref="B-ERASE")
        after = conn.execute(
            "SELECT member_ref, person_ref, note_enc FROM service_records"
        ).fetchone()
        counted = conn.execute(
            "SELECT count(*) FROM attendance_events WHERE program_id = 'B-CARE'"
            " AND member_ref = %s",
            (after[1] if after else "",),
        ).fetchone()
    assert kept == ["반찬", "병원 동행"]
    assert after is not None
    assert after[0] != "B-ERASE"
    assert after[0] == after[1]
    assert after[2] is None
    assert counted == (1,)
