"""`welfare user | token | keys` from the server's shell, and the settings that guard them."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pyotp
import pytest
from fastapi.testclient import TestClient

from ingest_api.core.config import Settings
from ingest_api.main import create_app
from tests.security_helpers import DATA_KEY, session_headers
from welfare.cli import main


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    """What the last command printed."""
    return capsys.readouterr().out


def test_the_first_administrator_and_the_rest_from_the_shell(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`welfare user add` creates the first administrator (temporary password, second-factor
    secret, shown once); reset, role and disable follow; every step is audited as cli:<login>."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    monkeypatch.setenv("USER", "root-on-server")
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO facilities (facility_id, name) VALUES ('B', '한마음')")
    assert main(["user", "add", "city.first", "--role", "city_admin", "--name", "첫 관리자"]) == 0
    out = _out(capsys)
    password = re.search(r"temporary password for city.first: (\S+)", out)
    secret = re.search(r"second factor \(TOTP\) secret: ([A-Z2-7]+)", out)
    assert password
    assert secret
    assert "otpauth://totp/Smart%20Welfare:city.first" in out
    # A manager needs a center; staff get programs; a second account of the same name fails.
    assert main(["user", "add", "b.boss", "--role", "center_manager"]) == 2
    assert main(["user", "add", "b.boss", "--role", "center_manager", "--facility", "B"]) == 0
    assert main(["user", "add", "b.boss", "--role", "auditor"]) == 2
    assert main(["user", "add", "b.lee", "--role", "center_staff", "--facility", "B"]) == 0
    _out(capsys)
    assert (
        main(
            [
                "user",
                "role",
                "b.lee",
                "--role",
                "center_staff",
                "--facility",
                "B",
                "--program",
                "B-MEAL",
            ]
        )
        == 0
    )
    assert main(["user", "list"]) == 0
    listing = _out(capsys)
    assert re.search(r"city.first\s+city_admin\s+-\s+active\s+2fa=yes", listing)
    assert re.search(r"b.lee\s+center_staff\s+B\s+active\s+2fa=no", listing)
    # The first sign-in asks for a new password (the temporary one works once for that).
    app = create_app(Settings(database_url=database_url, refresh_interval_s=0), consume=False)
    with TestClient(app) as client:
        headers = session_headers(database_url, "city.first")
        first = client.get("/api/v1/registry/facilities", headers=headers)
        assert first.status_code == 403
        assert "임시 비밀번호" in first.json()["detail"]
        page = client.get("/", headers={**headers, "Accept": "text/html"}, follow_redirects=False)
        assert page.headers["location"] == "/account/password"
        assert main(["user", "disable", "b.lee"]) == 0
        assert main(["user", "disable", "b.lee"]) == 0
        assert "was disabled already" in _out(capsys)
        assert main(["user", "reset", "b.lee"]) == 0
        assert "temporary password for b.lee" in _out(capsys)
    assert pyotp.TOTP(secret[1]).now().isdigit()
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT actor, action, subject FROM audit_log ORDER BY audit_id"
        ).fetchall()
    assert audit == [
        ("cli:root-on-server", "account", "account:city.first"),
        ("cli:root-on-server", "account", "account:b.boss"),
        ("cli:root-on-server", "account", "account:b.lee"),
        ("cli:root-on-server", "role_change", "account:b.lee"),
        ("cli:root-on-server", "account", "account:b.lee"),
        ("cli:root-on-server", "account", "account:b.lee"),
    ]


def test_service_tokens_from_the_shell(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token is printed once, works within its scopes, and stops when revoked."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["token", "add", "monitor", "--scope", "fleet.read", "--days", "30"]) == 0
    token = _out(capsys).strip()
    assert token.startswith("swt_")
    assert main(["token", "add", "bad", "--scope", "audit.read"]) == 2
    assert main(["token", "add", "bad", "--scope", "no.such"]) == 2
    app = create_app(Settings(database_url=database_url, refresh_interval_s=0), consume=False)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/devices", headers=auth).status_code == 200
        assert client.get("/api/v1/figures/daily?start=2026-11-20", headers=auth).status_code == 403
        assert main(["token", "list"]) == 0
        assert re.search(r"monitor\s+live\s+fleet.read", _out(capsys))
        assert main(["token", "revoke", "monitor"]) == 0
        assert client.get("/api/v1/devices", headers=auth).status_code == 401
    assert main(["token", "revoke", "monitor"]) == 2
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT secret_hash FROM api_tokens").fetchone()
    assert stored is not None
    assert stored[0] not in token  # only a hash is kept
    assert token.split("_")[2] not in str(stored)


def test_settings_refuse_weak_keys_and_an_owner_service_in_production(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A placeholder or short data key is refused; production needs the key, the migration
    URL, and a service that does not log in as the schema owner."""
    base: dict[str, Any] = {"database_url": "postgresql://app@db/welfare"}
    for bad in ("changeme-changeme-changeme-changeme", "too-short-key"):
        with pytest.raises(ValueError, match="data key"):
            Settings(**base, data_key=bad)
    strong: dict[str, Any] = {
        "mqtt": {"password": "broker-password-4f1e9c2b"},
        "credential_key": "credential-key-5a8d1e3f9c",
        "data_key": DATA_KEY,
    }
    with pytest.raises(ValueError, match="WELFARE_MIGRATION_URL"):
        Settings(**base, **strong, production=True)
    with pytest.raises(ValueError, match="schema owner"):
        Settings(**base, **strong, production=True, migration_url=base["database_url"])
    ok = Settings(**base, **strong, production=True, migration_url="postgresql://owner@db/w")
    assert ok.owner_url == "postgresql://owner@db/w"
    assert main(["keys", "new"]) == 0
    assert len(_out(capsys).strip()) >= 64
