"""Face consent and enrolment at the center, without kiosks: photos refused with a clear
message each, audit rows, templates sealed (never the descriptor in clear), per facility in
the rosters, deleted on a status change and on erasure."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("face_recognition", reason="the `face` extra is not installed")

from PIL import Image
from skimage import data

from broker.face import TemplateUnreadable, face_key, from_text, open_sealed
from broker.keys import facility_key
from ingest_api.registry import rights, rosters, store
from tests.face.conftest import png, portrait
from tests.fleet.conftest import MASTER
from tests.hardware.faces import astronaut
from tests.security_helpers import CIPHER
from welfare.face_desk import describe_photo

FACE = "/api/v1/registry/members/B-M1/face"
PHOTO = png(portrait(astronaut()))


def consent_and_enrol(client: TestClient, staff: dict[str, str]) -> None:
    """Record the consent and enrol from one photo."""
    answer = client.post(f"{FACE}/consent", json={"form_id": "F-0117"}, headers=staff)
    assert answer.status_code == 201, answer.text
    answer = client.post(f"{FACE}/enrol", json={"photos": [PHOTO]}, headers=staff)
    assert answer.status_code == 201, answer.text


def messages(answer: Any) -> dict[int, str]:
    """Photo index -> message of a 422."""
    assert answer.status_code == 422, answer.text
    return {d["loc"][-1]: d["msg"] for d in answer.json()["detail"]}


def test_photos_without_exactly_one_usable_face_get_a_clear_message_each(
    center: tuple[TestClient, dict[str, str]], database_url: str
) -> None:
    """Two faces, none, too small, not a picture: refused, naming the photo; nothing stored."""
    client, staff = center
    client.post(f"{FACE}/consent", json={"form_id": "F-0117"}, headers=staff)
    head = portrait(astronaut())
    # Half size: her face is ~43 px tall, found but too small to describe well.
    small = np.asarray(Image.fromarray(head).resize((head.shape[1] // 2, head.shape[0] // 2)))
    cases = {
        "얼굴이 2개": png(astronaut()),  # her picture shows a second face-like patch
        "얼굴을 찾지 못했습니다": png(data.coffee()),  # type: ignore[no-untyped-call]
        "너무 작습니다": png(np.ascontiguousarray(small)),
        "JPEG 또는 PNG": "aGVsbG8gd29ybGQ=",
        "읽을 수 없습니다": "not base64!",
    }
    for expected, photo in cases.items():
        answer = client.post(f"{FACE}/enrol", json={"photos": [PHOTO, photo]}, headers=staff)
        found = messages(answer)
        assert list(found) == [1], found
        assert expected in found[1], found
        assert found[1].startswith("사진 2:"), found
    blank = client.post(f"{FACE}/consent", json={"form_id": "  "}, headers=staff)
    assert blank.status_code == 422
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM face_templates").fetchone() == (0,)


def test_consent_enrolment_and_withdrawal_are_recorded_and_audited(
    center: tuple[TestClient, dict[str, str]], database_url: str
) -> None:
    """Who recorded the consent, when, the form; audit rows for each step; no photo kept."""
    client, staff = center
    consent_and_enrol(client, staff)
    shown = client.get(FACE, headers=staff).json()
    assert shown["consent"]["form_id"] == "F-0117"
    assert shown["consent"]["recorded_by"].endswith("b.staff")
    assert shown["consent"]["active"] is True
    assert shown["enrolled"] is True
    assert shown["photos"] == 1
    assert "sealed" not in str(shown)
    with psycopg.connect(database_url) as conn:  # the member's own export says so
        exported = rights.member_record(conn, member_ref="B-M1", cipher=CIPHER)["face"]
    assert exported["template_held"] is True
    assert exported["consent"]["form_id"] == "F-0117"
    assert "sealed" not in str(exported)
    withdrawn = client.post(f"{FACE}/withdraw", headers=staff).json()
    assert withdrawn == {"withdrawn": True, "template_deleted": True}
    after = client.get(FACE, headers=staff).json()
    assert after["enrolled"] is False
    assert after["consent"]["active"] is False
    assert after["consent"]["withdrawn_by"].endswith("b.staff")
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT action, detail FROM audit_log WHERE subject = 'member:B-M1:face' "
            "ORDER BY audit_id"
        ).fetchall()
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name LIKE 'face_%' AND data_type = 'bytea'"
        ).fetchall()
    actions = [(a, sorted(d)) for a, d in rows]
    assert actions == [
        ("change", ["consent", "form_id"]),
        ("change", ["enrolled", "key_id"]),
        ("view", []),
        ("change", ["consent", "template_deleted"]),
        ("view", []),
    ]
    assert columns == [("face_templates", "sealed")]  # the only binary: the sealed template


def test_the_template_is_sealed_for_bs_kiosks_only_and_deleted_off_the_roster(
    center: tuple[TestClient, dict[str, str]], database_url: str
) -> None:
    """In B's roster, opening with B's face key only; gone on suspension and on erasure."""
    client, staff = center
    consent_and_enrol(client, staff)
    descriptor = describe_photo(base64.b64decode(PHOTO))[0].descriptor
    with psycopg.connect(database_url) as conn:
        (sealed,) = conn.execute("SELECT sealed FROM face_templates").fetchone() or (b"",)
        assert descriptor[:64] not in bytes(sealed)  # stored sealed, never in clear
        b_roster = rosters.roster_members(conn, facility_id="B", program_ids=["B-MEAL"])
        a_roster = rosters.roster_members(conn, facility_id="A", program_ids=["A-MEAL"])
        assert [m.member_ref for m in b_roster if m.face_template] == ["B-M1"]
        assert all(m.face_template is None for m in a_roster)
        template = b_roster[0].face_template
        assert template is not None
        b_key = facility_key(MASTER.encode(), facility_id="B", version=1).encode()
        a_key = facility_key(MASTER.encode(), facility_id="A", version=1).encode()
        opened = open_sealed(face_key(b_key), "B-M1", from_text(template.sealed))
        assert np.allclose(np.frombuffer(opened, "<f8"), np.frombuffer(descriptor, "<f8"))
        with pytest.raises(TemplateUnreadable):
            open_sealed(face_key(a_key), "B-M1", from_text(template.sealed))
        with pytest.raises(TemplateUnreadable):  # bound to the member
            open_sealed(face_key(b_key), "B-M2", from_text(template.sealed))

        # Suspended: the template is deleted in the status change's transaction.
        store.set_status(conn, member_ref="B-M1", status="suspended")
        assert conn.execute("SELECT count(*) FROM face_templates").fetchone() == (0,)
        store.set_status(conn, member_ref="B-M1", status="active")
        conn.commit()
    consent_and_enrol(client, staff)
    with psycopg.connect(database_url) as conn:
        rights.erase_member(conn, member_ref="B-M1")
        for table in ("face_templates", "face_consents"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)  # noqa: S608
        dirty = conn.execute("SELECT DISTINCT facility_id FROM fleet_dirty").fetchall()
        assert ("B",) in dirty
