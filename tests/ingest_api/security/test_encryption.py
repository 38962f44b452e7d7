"""Personal fields at rest: encrypted, found by keyed hash, rotated to a new key, migrated."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import date
from typing import Any

import psycopg
import pytest

from ingest_api.core import migrate as migrations
from ingest_api.core.fieldcrypto import FieldCipher, FieldCryptoError
from ingest_api.core.security import Role
from ingest_api.registry import store
from tests.ingest_api.security.conftest import CONTACT, PHONES, World
from tests.security_helpers import CIPHER, DATA_KEY, principal
from welfare.cli import main

NEW_KEY = "rotated-data-key-9d0b61e2c7a84f35-b2f0c6e1a9"
MANAGER_B = principal(Role.CENTER_MANAGER, "B")


def _pg_dump(pg_server: Any, url: str) -> str:
    """Debian's pg_dump of the test database, as plain SQL."""
    result = subprocess.run(
        [str(pg_server.bindir / "pg_dump"), "--data-only", "--inserts", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def test_a_dump_of_the_database_holds_no_phone_birth_date_or_needs_in_clear(
    world: World, pg_server: Any
) -> None:
    """Phones (with or without dashes), birth dates, needs and second-factor secrets appear
    nowhere in a full dump; the members themselves are in it (names are not encrypted)."""
    contact = {**CONTACT, "contact_code": "C-B-0042", "needs": "당뇨 식단 상담 필요"}
    assert (
        world.client.post(
            "/api/v1/registry/contacts", json=contact, headers=world.headers["manager_b"]
        ).status_code
        == 201
    )
    dump = _pg_dump(pg_server, world.url)
    assert "이영희" in dump  # the dump does hold the registry
    assert "INSERT INTO public.members" in dump
    secrets = [*PHONES.values(), *(p.replace("-", "") for p in PHONES.values())]
    secrets += ["1941-05-09", "19410509", "식사", "안부", "당뇨 식단", *world.totp.values()]
    assert [s for s in secrets if s in dump] == []


def test_the_ciphertext_belongs_to_its_row(world: World) -> None:
    """A phone's ciphertext copied onto another member does not decrypt there."""
    with psycopg.connect(world.url) as conn:
        conn.execute(
            "UPDATE members SET phone_enc = (SELECT phone_enc FROM members"
            " WHERE member_ref = 'B-M1') WHERE member_ref = 'B-M2'"
        )
        with pytest.raises(FieldCryptoError, match="altered or misplaced"):
            store.get_sensitive(conn, member_ref="B-M2", scope=MANAGER_B, cipher=CIPHER)


def test_key_rotation_moves_every_value_to_the_new_key(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the new key current and the old one previous, `welfare keys rotate` re-encrypts
    everything; afterwards the old key opens nothing and the new one alone reads it all,
    search by the phone's last digits included."""
    monkeypatch.setenv("DATABASE_URL", world.url)
    monkeypatch.setenv("WELFARE_DATA_KEY", NEW_KEY)
    monkeypatch.setenv("WELFARE_DATA_KEY_PREVIOUS", json.dumps([DATA_KEY]))
    assert main(["keys", "rotate"]) == 0
    assert "re-encrypted 14 value(s)" in capsys.readouterr().out  # 4 members x 3, 2 TOTP
    assert main(["keys", "rotate"]) == 0
    assert "re-encrypted 0 value(s); 14 already" in capsys.readouterr().out
    new_only = FieldCipher([NEW_KEY.encode()])
    with psycopg.connect(world.url) as conn:
        with pytest.raises(FieldCryptoError, match="unknown key"):
            store.get_sensitive(conn, member_ref="B-M1", scope=MANAGER_B, cipher=CIPHER)
        clear = store.get_sensitive(conn, member_ref="B-M1", scope=MANAGER_B, cipher=new_only)
        found = store.search_members(conn, scope=MANAGER_B, cipher=new_only, phone_last4="5926")
    assert clear is not None
    assert (clear.phone, clear.birth_date) == ("010-3141-5926", date(1941, 5, 9))
    assert [m.member_ref for m in found] == ["B-M1"]


def test_migrating_an_older_database_encrypts_what_it_held_in_clear(
    pg_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before 0034 keeps every phone, birth date and need: without the key
    the migration stops and says why; with it, they are encrypted, then the clear columns go."""
    url: str = pg_server.create_database(f"m_{uuid.uuid4().hex[:12]}")
    every = migrations.available

    def upto(version: int) -> Any:
        return lambda *, timescale: [m for m in every(timescale=timescale) if m.version <= version]

    monkeypatch.setattr(migrations, "available", upto(33))
    migrations.migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO facilities (facility_id, name) VALUES ('B', '한마음')")
        conn.execute("INSERT INTO persons (person_id) VALUES ('P-1')")
        conn.execute(
            "INSERT INTO members (member_ref, facility_id, person_id, display_name, phone,"
            " birth_date, main_needs) VALUES ('B-OLD', 'B', 'P-1', '옛회원', '010-5555-1234',"
            " '1939-02-28', '{식사,병원동행}')"
        )
        conn.execute(
            "INSERT INTO community_contacts (contact_code, facility_id, gender, age_band,"
            " neighbourhood, place, met_at, service_date, needs) VALUES ('C-OLD', 'B', 'M',"
            " '80-84', '우만1동', '경로당', now(), current_date, '거동 불편')"
        )
    monkeypatch.setattr(migrations, "available", every)
    with pytest.raises(RuntimeError, match="set WELFARE_DATA_KEY"):
        migrations.migrate(url)
    applied = migrations.migrate(url, cipher=CIPHER)
    assert applied[0] == 35
    with psycopg.connect(url) as conn:
        member = store.get_member(conn, member_ref="B-OLD", scope=MANAGER_B, cipher=CIPHER)
        clear = store.get_sensitive(conn, member_ref="B-OLD", scope=MANAGER_B, cipher=CIPHER)
        needs = conn.execute("SELECT needs_enc FROM community_contacts").fetchone()
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'members'"
            )
        }
    assert member is not None
    assert (member.birth_year, member.main_needs) == (1939, ["식사", "병원동행"])
    assert clear is not None
    assert (clear.phone, clear.birth_date) == ("010-5555-1234", date(1939, 2, 28))
    assert needs is not None
    assert CIPHER.decrypt(needs[0], context="community_contacts.needs:C-OLD") == "거동 불편"
    assert {"phone", "birth_date", "main_needs"} & columns == set()
