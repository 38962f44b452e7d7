"""Members at the desk: search, a card tapped on the desk reader, registration with consent,
enrolment, cards issued and revoked by a tap, status and its effect on the kiosks, scope."""

from __future__ import annotations

import threading
import uuid

import psycopg

from broker.hashing import credential_hash
from broker.keys import facility_key
from ingest_api.registry import desk, rosters
from tests.ingest_api.desk.conftest import World, form_key_of
from tests.ingest_api.security.conftest import CREDENTIAL_KEY, PHONES

HTML = {"Accept": "text/html"}
NEW_UID = "04:7F:3A:91:C2"


def _h(world: World, who: str) -> dict[str, str]:
    """A browser's headers for one of the world's accounts."""
    return {**world.headers[who], **HTML}


def _register_form(key: str, **over: str | list[str]) -> dict[str, str | list[str]]:
    """A complete registration form (consents given) with some fields changed."""
    data: dict[str, str | list[str]] = {
        "form_key": key,
        "member_ref": "B-00100",
        "display_name": "정복순",
        "gender": "F",
        "birth_date": "1944-03-15",
        "phone": "010-5555-7788",
        "neighbourhood": "우만1동",
        "main_needs": "식사, 안부",
        "program_id": "B-MEAL",
        "consent": ["privacy", "transfer"],
    }
    data.update(over)
    return data


def test_search_by_number_name_phone_tail_and_card(desk_world: World) -> None:
    """One box finds by number, name and a phone's last four digits; a tapped card finds its
    member; another center's staff find none of B's members."""
    c = desk_world.client
    page = c.get("/desk?q=이영희", headers=_h(desk_world, "staff_b"))
    assert page.status_code == 200
    assert "B-M1" in page.text
    page = c.get(f"/desk?q={PHONES['B-M2'][-4:]}", headers=_h(desk_world, "staff_b"))
    assert "박말순" in page.text
    assert "이영희" not in page.text
    page = c.get("/desk?q=B-M1", headers=_h(desk_world, "staff_b"), follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/desk/members/B-M1"
    # B-M1's card as conftest registered it; the reader types it with Enter.
    uid = f"04:A1:{len('B-M1'):02X}:{sum(map(ord, 'B-M1')) % 256:02X}"
    tapped = c.post(
        "/desk/card", data={"uid": uid}, headers=_h(desk_world, "staff_b"), follow_redirects=False
    )
    assert tapped.status_code == 303
    assert tapped.headers["location"] == "/desk/members/B-M1"
    unknown = c.post("/desk/card", data={"uid": "04:00:00:00"}, headers=_h(desk_world, "staff_b"))
    assert unknown.status_code == 404
    assert "등록되지 않은 카드" in unknown.text
    other = c.get("/desk?q=이영희", headers=_h(desk_world, "staff_a"))
    assert "B-M1" not in other.text
    assert "찾는 회원이 없습니다" in other.text
    # A's staff tapping B's member's card: not found either.
    foreign = c.post("/desk/card", data={"uid": uid}, headers=_h(desk_world, "staff_a"))
    assert foreign.status_code == 404
    with psycopg.connect(desk_world.url) as conn:
        searches = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'search' AND actor = 'staff.b'"
        ).fetchone()
    assert searches is not None
    assert searches[0] == 5  # name, phone, number, two taps


def test_registration_needs_the_required_consents_and_keeps_what_was_typed(
    desk_world: World,
) -> None:
    """Without consent (and with bad fields) nothing is recorded; every bad field has its
    message in Korean and every typed value comes back."""
    c = desk_world.client
    form = c.get("/desk/members/new", headers=_h(desk_world, "staff_b"))
    assert form.status_code == 200
    key = form_key_of(form.text)
    sent = c.post(
        "/desk/members/new",
        data=_register_form(key, consent=["privacy"], phone="010-12", birth_date="1944-13-40"),
        headers=_h(desk_world, "staff_b"),
    )
    assert sent.status_code == 422
    assert "시·연구원 제공 동의가 없으면 등록할 수 없습니다" in sent.text
    assert "전화번호의 형식이 맞지 않습니다" in sent.text
    assert "생년월일은 2026-01-31 처럼 입력하세요" in sent.text
    for kept in ("정복순", "우만1동", "010-12", "1944-13-40", "식사, 안부", key):
        assert kept in sent.text
    blank = c.post(
        "/desk/members/new",
        data=_register_form(key, display_name="", gender="X", neighbourhood=""),
        headers=_h(desk_world, "staff_b"),
    )
    assert blank.status_code == 422
    assert "이름을 입력하세요" in blank.text
    assert "성별: 목록에 있는 값을 선택하세요" in blank.text
    assert "거주 동을 입력하세요" in blank.text
    with psycopg.connect(desk_world.url) as conn:
        assert conn.execute("SELECT 1 FROM members WHERE member_ref = 'B-00100'").fetchone() is None


def test_registration_sent_twice_records_once(desk_world: World) -> None:
    """A tablet resending the same form (same key) records one member and lands on it."""
    c = desk_world.client
    key = form_key_of(c.get("/desk/members/new", headers=_h(desk_world, "staff_b")).text)
    answers = [
        c.post(
            "/desk/members/new",
            data=_register_form(key),
            headers=_h(desk_world, "staff_b"),
            follow_redirects=False,
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["location"] == answers[1].headers["location"]
    with psycopg.connect(desk_world.url) as conn:
        rows = conn.execute(
            "SELECT m.display_name, array_agg(k.kind ORDER BY k.kind) FROM members m"
            " JOIN member_consents k USING (member_ref) WHERE m.member_ref = 'B-00100'"
            " GROUP BY m.display_name"
        ).fetchall()
        enrolled = conn.execute(
            "SELECT program_id FROM enrolments WHERE member_ref = 'B-00100'"
        ).fetchall()
        changes = conn.execute(
            "SELECT count(*) FROM audit_log WHERE subject = 'member:B-00100' AND action = 'change'"
        ).fetchone()
    assert rows == [("정복순", ["privacy", "transfer"])]
    assert enrolled == [("B-MEAL",)]
    assert changes == (1,)


def test_a_concurrent_double_send_waits_for_the_first(database_url: str) -> None:
    """Two sends of one form at the same moment: the second waits, then finds the first's
    result (the claim is in the recording transaction)."""
    key = uuid.uuid4()
    results: list[str | None] = []
    first = psycopg.connect(database_url)
    assert desk.claim_form(first, form_key=key, actor="kim", kind="visitor") is None

    def second() -> None:
        with psycopg.connect(database_url) as conn:
            results.append(desk.claim_form(conn, form_key=key, actor="kim", kind="visitor"))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second send must wait for the first"
    desk.finish_form(first, form_key=key, result="/field/visitors/V-B-20261120-5001")
    first.commit()
    first.close()
    thread.join(10)
    assert results == ["/field/visitors/V-B-20261120-5001"]


def test_enrol_issue_and_revoke_a_card_by_a_desk_tap(desk_world: World) -> None:
    """Enrol in a program; a tapped card is stored as the kiosks' hash (no clear UID), finds the
    member, and a second tap revokes it; a card of another member is refused."""
    c = desk_world.client
    h = _h(desk_world, "staff_b")
    page = c.get("/desk/members/B-M1", headers=h)
    assert page.status_code == 200
    key = form_key_of(page.text)
    enrol = c.post(
        "/desk/members/B-M1/programs",
        data={"form_key": key, "action": "enrol", "program_id": "B-YOGA", "fee_type": "reduced"},
        headers=h,
        follow_redirects=False,
    )
    assert enrol.status_code == 303
    key = form_key_of(c.get("/desk/members/B-M1", headers=h).text)
    issued = c.post(
        "/desk/members/B-M1/cards",
        data={"form_key": key, "action": "issue", "uid": NEW_UID},
        headers=h,
        follow_redirects=False,
    )
    assert issued.status_code == 303
    expected = credential_hash(
        NEW_UID, key=facility_key(CREDENTIAL_KEY.encode(), facility_id="B", version=1).encode()
    )
    with psycopg.connect(desk_world.url) as conn:
        enrolled = conn.execute(
            "SELECT fee_type FROM enrolments WHERE member_ref = 'B-M1' AND program_id = 'B-YOGA'"
        ).fetchone()
        stored = {
            r[0]
            for r in conn.execute(
                "SELECT credential_hash FROM member_credentials WHERE member_ref = 'B-M1'"
                " AND revoked_at IS NULL"
            )
        }
        dump = conn.execute(
            "SELECT count(*) FROM member_credentials WHERE credential_hash LIKE %s"
            " OR encode(uid_sealed, 'escape') LIKE %s",
            ("%" + NEW_UID + "%", "%" + NEW_UID + "%"),
        ).fetchone()
        members = rosters.roster_members(conn, facility_id="B", program_ids=["B-YOGA"])
    assert enrolled == ("reduced",)
    assert expected in stored, "the desk must hash a card exactly as the kiosks do"
    assert dump == (0,)
    assert expected in next(m for m in members if m.member_ref == "B-M1").credential_hashes
    tapped = c.post("/desk/card", data={"uid": NEW_UID}, headers=h, follow_redirects=False)
    assert tapped.headers["location"] == "/desk/members/B-M1"
    # The same card for another member: refused with the reason, nothing changes.
    key = form_key_of(c.get("/desk/members/B-M2", headers=h).text)
    refused = c.post(
        "/desk/members/B-M2/cards",
        data={"form_key": key, "action": "issue", "uid": NEW_UID},
        headers=h,
    )
    assert refused.status_code == 422
    assert "다른 회원에게 발급되어" in refused.text
    key = form_key_of(c.get("/desk/members/B-M1", headers=h).text)
    revoked = c.post(
        "/desk/members/B-M1/cards",
        data={"form_key": key, "action": "revoke_tap", "uid": NEW_UID},
        headers=h,
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    gone = c.post("/desk/card", data={"uid": NEW_UID}, headers=h)
    assert gone.status_code == 404


def test_a_status_change_shows_its_effect_on_the_kiosks(desk_world: World) -> None:
    """Moved out: the page says the kiosks refuse the card and when it leaves their rosters;
    the roster the center builds carries the new status."""
    c = desk_world.client
    h = _h(desk_world, "staff_b")
    with psycopg.connect(desk_world.url) as conn:
        conn.execute(
            "INSERT INTO devices (facility_id, device_id) VALUES ('B', 'meal-1')"
            " ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO device_programs (facility_id, device_id, program_id)"
            " VALUES ('B', 'meal-1', 'B-MEAL') ON CONFLICT DO NOTHING"
        )
    page = c.get("/desk/members/B-M1", headers=h)
    assert "키오스크 1대(meal-1)의 명단에 있습니다" in page.text
    key = form_key_of(page.text)
    bad = c.post("/desk/members/B-M1/status", data={"form_key": key, "status": "erased"}, headers=h)
    assert bad.status_code == 422
    assert "상태: 목록에 있는 값을 선택하세요" in bad.text
    moved = c.post(
        "/desk/members/B-M1/status",
        data={"form_key": key, "status": "moved_out"},
        headers=h,
        follow_redirects=False,
    )
    assert moved.status_code == 303
    moved = c.get(moved.headers["location"], headers=h)
    assert "전출: 1분 안에 키오스크 1대(meal-1)가 새 명단을 받아" in moved.text
    assert "명단에서 빠집니다 (30일 보관)" in moved.text
    with psycopg.connect(desk_world.url) as conn:
        roster = rosters.roster_members(conn, facility_id="B", program_ids=["B-MEAL"])
    assert next(m for m in roster if m.member_ref == "B-M1").status == "moved_out"


def test_edit_keeps_cards_and_phone_and_another_center_gets_404(desk_world: World) -> None:
    """Correcting a name keeps the cards and the stored phone; A's staff cannot open B's
    member (404, audited as a denial); the manager sees the phone only with a reason."""
    c = desk_world.client
    h = _h(desk_world, "staff_b")
    form = c.get("/desk/members/B-M1/edit", headers=h)
    assert form.status_code == 200
    assert PHONES["B-M1"] not in form.text
    key = form_key_of(form.text)
    saved = c.post(
        "/desk/members/B-M1/edit",
        data={
            "form_key": key,
            "display_name": "이영희(수정)",
            "gender": "F",
            "neighbourhood": "우만2동",
            "consent": ["privacy", "transfer"],
        },
        headers=h,
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with psycopg.connect(desk_world.url) as conn:
        row = conn.execute(
            "SELECT display_name, phone_enc IS NOT NULL, (SELECT count(*) FROM member_credentials"
            " WHERE member_ref = 'B-M1' AND revoked_at IS NULL) FROM members"
            " WHERE member_ref = 'B-M1'"
        ).fetchone()
    assert row == ("이영희(수정)", True, 1)
    assert c.get("/desk/members/B-M1", headers=_h(desk_world, "staff_a")).status_code == 404
    with psycopg.connect(desk_world.url) as conn:
        denied = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'denied' AND actor = 'staff.a'"
        ).fetchone()
    assert denied == (1,)
    m = _h(desk_world, "manager_b")
    assert c.get("/desk/members/B-M1/sensitive?reason=", headers=m).status_code == 422
    clear = c.get("/desk/members/B-M1/sensitive?reason=안부전화", headers=m)
    assert clear.status_code == 200
    assert PHONES["B-M1"] in clear.text
    assert c.get("/desk/members/B-M1/sensitive?reason=안부전화", headers=h).status_code == 403


def test_a_lost_card_is_revoked_from_the_list(desk_world: World) -> None:
    """A card that cannot be tapped (lost) is revoked by its line on the member page; a line
    that names no card of the member is refused with a message."""
    c = desk_world.client
    h = _h(desk_world, "staff_b")
    page = c.get("/desk/members/B-M2", headers=h)
    with psycopg.connect(desk_world.url) as conn:
        (card,) = [x.ref for x in desk.credentials(conn, member_ref="B-M2")]
    assert f'name="card_ref" value="{card}"' in page.text
    wrong = c.post(
        "/desk/members/B-M2/cards",
        data={"form_key": form_key_of(page.text), "action": "revoke", "card_ref": "f" * 12},
        headers=h,
    )
    assert wrong.status_code == 422
    assert "해지할 카드를 찾지 못했습니다" in wrong.text
    done = c.post(
        "/desk/members/B-M2/cards",
        data={"form_key": form_key_of(wrong.text), "action": "revoke", "card_ref": card},
        headers=h,
        follow_redirects=False,
    )
    assert done.status_code == 303
    with psycopg.connect(desk_world.url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM member_credentials WHERE member_ref = 'B-M2'"
            " AND revoked_at IS NULL"
        ).fetchone()
    assert left == (0,)


def test_a_consent_withdrawn_at_the_desk_keeps_its_dates(desk_world: World) -> None:
    """SMS consent given, then withdrawn on the edit form: it stays on record with the day it
    was withdrawn, and the required consents cannot be taken away there. Face consent is not
    on this form (it is recorded on the face page with its form id): a `face` sent is ignored."""
    c = desk_world.client
    h = _h(desk_world, "staff_b")
    base = {"display_name": "이영희", "gender": "F", "neighbourhood": "우만2동"}
    for consents in (["privacy", "transfer", "sms", "face"], ["privacy", "transfer"]):
        key = form_key_of(c.get("/desk/members/B-M1/edit", headers=h).text)
        sent = c.post(
            "/desk/members/B-M1/edit",
            data={**base, "form_key": key, "consent": consents},
            headers=h,
            follow_redirects=False,
        )
        assert sent.status_code == 303
    key = form_key_of(c.get("/desk/members/B-M1/edit", headers=h).text)
    refused = c.post(
        "/desk/members/B-M1/edit",
        data={**base, "form_key": key, "consent": ["transfer"]},
        headers=h,
    )
    assert refused.status_code == 422
    with psycopg.connect(desk_world.url) as conn:
        rows = conn.execute(
            "SELECT kind, withdrawn_on IS NOT NULL FROM member_consents"
            " WHERE member_ref = 'B-M1' ORDER BY kind"
        ).fetchall()
    assert rows == [("privacy", False), ("sms", True), ("transfer", False)]
    assert "철회" in c.get("/desk/members/B-M1", headers=h).text


def test_a_form_key_of_another_account_is_refused(desk_world: World) -> None:
    """A form key someone else already used records nothing for another account."""
    c = desk_world.client
    key = form_key_of(c.get("/field/visitors", headers=_h(desk_world, "staff_b")).text)
    data = {"form_key": key, "gender": "M", "age_band": "70-74", "neighbourhood": "우만1동"}
    first = c.post(
        "/field/visitors", data=data, headers=_h(desk_world, "staff_b"), follow_redirects=False
    )
    assert first.status_code == 303
    other = c.post("/field/visitors", data=data, headers=_h(desk_world, "manager_b"))
    assert other.status_code == 400
    with psycopg.connect(desk_world.url) as conn:
        assert conn.execute("SELECT count(*) FROM visitors").fetchone() == (1,)


def test_staff_with_assigned_programs_work_within_them(desk_world: World) -> None:
    """Staff assigned to B-YOGA see only its members, register only into it, and cannot open
    a meal member (404, as for a number that does not exist)."""
    c = desk_world.client
    h = _h(desk_world, "staff_b_yoga")
    assert "B-M2" in c.get("/desk?q=박말순", headers=h).text
    assert "찾는 회원이 없습니다" in c.get("/desk?q=이영희", headers=h).text
    assert c.get("/desk/members/B-M1", headers=h).status_code == 404
    form = c.get("/desk/members/new", headers=h)
    assert 'value="B-MEAL"' not in form.text
    key = form_key_of(form.text)
    for program, status in (("B-MEAL", 422), ("", 422), ("B-YOGA", 303)):
        sent = c.post(
            "/desk/members/new",
            data=_register_form(key, program_id=program),
            headers=h,
            follow_redirects=False,
        )
        assert sent.status_code == status, program
    assert (
        "담당 프로그램 중 하나에 등록해야 합니다"
        in c.post(
            "/desk/members/new",
            data=_register_form(form_key_of(form.text), member_ref="B-00101", program_id=""),
            headers=h,
        ).text
    )
