"""Signing in through the real pages: password, second factor, lockout, CSRF, session expiry."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pyotp
from fastapi.testclient import TestClient
from httpx import Response

from ingest_api.auth.accounts import disable_user
from ingest_api.core.security import Permission
from ingest_api.core.sessions import SESSION_COOKIE
from tests.ingest_api.security.conftest import World
from tests.security_helpers import PASSWORD, session_headers, token_headers

WRONG = "아이디 또는 비밀번호가 맞지 않습니다."


def _form_token(html: str) -> str:
    """The CSRF token of the page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found[1]


def _sign_in(client: TestClient, username: str, password: str, next_: str = "/") -> Response:
    """Open the sign-in page and submit it (cookies stay in the client)."""
    page = client.get("/login", params={"next": next_})
    response: Response = client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": next_,
            "csrf_token": _form_token(page.text),
        },
        follow_redirects=False,
    )
    return response


def _message(response: Response) -> str:
    """The error message a page shows."""
    found = re.search(r'id="message" role="alert">([^<]+)<', response.text)
    return found[1] if found else ""


def test_staff_sign_in_with_a_password_and_managers_with_the_second_factor(world: World) -> None:
    """Staff: password only. A manager: password, then the authenticator's code (once)."""
    client = world.client
    done = _sign_in(client, "staff.b", PASSWORD, next_="/?day=2026-11-20")
    assert done.status_code == 303
    assert done.headers["location"] == "/?day=2026-11-20"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert client.get("/?day=2026-11-20").status_code == 200
    client.cookies.clear()

    step1 = _sign_in(client, "manager.b", PASSWORD, next_="/audit")
    assert step1.status_code == 303
    assert step1.headers["location"].startswith("/login/second-factor")
    waiting = client.cookies[SESSION_COOKIE]
    # Half signed in is not signed in.
    assert client.get("/api/v1/registry/members/B-M1").status_code == 401
    form = client.get(step1.headers["location"])
    token = _form_token(form.text)
    bad = client.post(
        "/login/second-factor", data={"code": "000000", "csrf_token": token, "next": "/"}
    )
    assert bad.status_code == 401
    assert "인증 코드가 맞지 않습니다" in _message(bad)
    code = pyotp.TOTP(world.totp["manager.b"]).now()
    good = client.post(
        "/login/second-factor",
        data={"code": code, "csrf_token": token, "next": "/?day=2026-11-20"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert good.headers["location"] == "/?day=2026-11-20"
    assert client.cookies[SESSION_COOKIE] != waiting  # a new session id after the 2nd factor
    assert client.get("/api/v1/registry/members/B-M1").status_code == 200
    client.cookies.clear()
    # The same code does not work twice.
    _sign_in(client, "manager.b", PASSWORD)
    token = _form_token(client.get("/login/second-factor").text)
    replay = client.post("/login/second-factor", data={"code": code, "csrf_token": token})
    assert replay.status_code == 401
    client.cookies.clear()
    with psycopg.connect(world.url) as conn:
        actions = conn.execute(
            "SELECT actor, action, detail->>'why' FROM audit_log"
            " WHERE action IN ('sign_in', 'sign_in_failed') ORDER BY audit_id"
        ).fetchall()
    assert actions == [
        ("staff.b", "sign_in", None),
        ("manager.b", "sign_in_failed", "second_factor"),
        ("manager.b", "sign_in", None),
        ("manager.b", "sign_in_failed", "second_factor"),
    ]


def test_a_wrong_password_gets_the_same_answer_for_any_name_and_locks_with_back_off(
    world: World,
) -> None:
    """Five failures lock a name for a minute, the next for two; unknown names alike."""
    client = world.client
    answers = {}
    for name in ("staff.b", "nobody.here"):
        texts = []
        for _ in range(4):
            response = _sign_in(client, name, "not-the-password-1")
            assert response.status_code == 401
            texts.append(_message(response))
        answers[name] = texts
        client.cookies.clear()
    assert answers["staff.b"] == answers["nobody.here"] == [WRONG] * 4
    locked = _sign_in(client, "staff.b", "not-the-password-1")
    assert "1분 후에 다시 시도하세요" in _message(locked)
    assert "1분 후에 다시 시도하세요" in _message(_sign_in(client, "nobody.here", "x" * 12))
    # Locked: even the right password does not sign in (and says the same).
    right = _sign_in(client, "staff.b", PASSWORD)
    assert right.status_code == 401
    assert "1분 후에 다시 시도하세요" in _message(right)
    with psycopg.connect(world.url) as conn:
        conn.execute(
            "UPDATE sign_in_attempts SET locked_until = now() - interval '1 second'"
            " WHERE name_key = 'staff.b'"
        )
    # The minute passed: one more failure locks again, now for two minutes.
    again = _sign_in(client, "staff.b", "not-the-password-1")
    assert "2분 후에 다시 시도하세요" in _message(again)
    with psycopg.connect(world.url) as conn:
        failures, until = conn.execute(
            "SELECT failures, locked_until - now() FROM sign_in_attempts WHERE name_key = 'staff.b'"
        ).fetchone() or (0, None)
        assert failures == 6
        assert timedelta(seconds=100) < until <= timedelta(seconds=120)
        conn.execute("UPDATE sign_in_attempts SET locked_until = now() - interval '1 second'")
        counted = conn.execute(
            "SELECT actor, count(*) FROM audit_log WHERE action = 'sign_in_failed'"
            " GROUP BY actor ORDER BY actor"
        ).fetchall()
    assert counted == [("nobody.here", 5), ("staff.b", 7)]
    ok = _sign_in(client, "staff.b", PASSWORD)
    assert ok.status_code == 303
    with psycopg.connect(world.url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM sign_in_attempts WHERE name_key = 'staff.b'"
        ).fetchone() == (0,)


def test_csrf_on_forms_and_cookie_signed_api_calls(world: World) -> None:
    """A state-changing request riding on the cookie needs the session's token; a token-signed
    machine needs none; the sign-in form needs its own."""
    client = world.client
    headers = session_headers(world.url, "staff.b")
    cookie_only = {"Cookie": headers["Cookie"]}
    body = {"status": "active"}
    url = "/api/v1/registry/members/B-M1/status"
    assert client.post(url, json=body, headers=cookie_only).status_code == 403
    wrong = {**cookie_only, "X-CSRF-Token": "forged"}
    assert client.post(url, json=body, headers=wrong).status_code == 403
    assert client.post(url, json=body, headers=headers).status_code == 200
    form = {"current": PASSWORD, "new": "Another-password-77"}
    assert client.post("/account/password", data=form, headers=cookie_only).status_code == 403
    token = headers["X-CSRF-Token"]
    changed = client.post(
        "/account/password",
        data={**form, "csrf_token": token},
        headers=cookie_only,
        follow_redirects=False,
    )
    assert changed.status_code == 303
    machine = token_headers(world.url, "refresher", [Permission.FIGURES_REFRESH])
    assert client.post("/api/v1/figures/refresh", headers=machine).status_code == 200
    # The sign-in form without its cookie-bound token is refused.
    client.cookies.clear()
    forged = client.post(
        "/login", data={"username": "staff.b", "password": "Another-password-77", "csrf_token": "x"}
    )
    assert forged.status_code == 403


def test_an_ended_session_asks_to_sign_in_again_and_returns_to_the_page(world: World) -> None:
    """Idle for longer than allowed, or past the absolute end: 401 for the API, the sign-in
    page (saying so) for a browser, and back to the page asked for afterwards."""
    client = world.client
    headers = session_headers(world.url, "staff.b")
    assert client.get("/api/v1/registry/members/B-M1", headers=headers).status_code == 200
    with psycopg.connect(world.url) as conn:
        conn.execute("UPDATE user_sessions SET last_seen_at = now() - interval '31 minutes'")
    api = client.get("/api/v1/registry/members/B-M1", headers=headers)
    assert api.status_code == 401
    assert "세션이 만료" in api.json()["detail"]
    page = client.get(
        "/?day=2026-11-20",
        headers={**headers, "Accept": "text/html"},
        follow_redirects=False,
    )
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Fday%3D2026-11-20&expired=1"
    login = client.get(page.headers["location"])
    assert 'id="expired"' in login.text
    done = _sign_in(client, "staff.b", PASSWORD, next_="/?day=2026-11-20")
    assert done.headers["location"] == "/?day=2026-11-20"
    client.cookies.clear()
    # A form sent after the end goes back to its page after signing in (nothing is replayed).
    headers = session_headers(world.url, "staff.b")
    with psycopg.connect(world.url) as conn:
        conn.execute("UPDATE user_sessions SET last_seen_at = now() - interval '31 minutes'")
    sent = client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "Typed-before-expiry-9", "csrf_token": "t"},
        headers={
            **headers,
            "Accept": "text/html",
            "Referer": "http://testserver/account/password",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=%2Faccount%2Fpassword&expired=1"
    client.cookies.clear()
    # The absolute end holds however busy the session is.
    headers = session_headers(world.url, "staff.b")
    with psycopg.connect(world.url) as conn:
        conn.execute("UPDATE user_sessions SET expires_at = now() - interval '1 second'")
    assert client.get("/api/v1/registry/members/B-M1", headers=headers).status_code == 401


def test_sign_out_disabling_and_tokens_end_access(world: World) -> None:
    """Signing out and disabling end sessions; a revoked, expired or forged token is a 401."""
    from ingest_api.auth.tokens import revoke_token

    client = world.client
    headers = session_headers(world.url, "staff.b")
    assert client.post("/logout", headers=headers, follow_redirects=False).status_code == 303
    assert client.get("/api/v1/registry/members/B-M1", headers=headers).status_code == 401
    headers = session_headers(world.url, "staff.b")
    with psycopg.connect(world.url) as conn:
        disable_user(conn, username="staff.b", actor="test")
    assert client.get("/api/v1/registry/members/B-M1", headers=headers).status_code == 401
    client.cookies.clear()
    assert _sign_in(client, "staff.b", PASSWORD).status_code == 401

    token = world.headers["token"]
    assert client.get("/api/v1/figures/daily?start=2026-11-20", headers=token).status_code == 200
    # Bound to B: A's figures are refused.
    other = client.get("/api/v1/figures/daily?start=2026-11-20&facility_id=A", headers=token)
    assert other.status_code == 403
    forged = {"Authorization": token["Authorization"][:-4] + "AAAA"}
    assert client.get("/api/v1/figures/daily?start=2026-11-20", headers=forged).status_code == 401
    with psycopg.connect(world.url) as conn:
        revoke_token(conn, name="kiosk-sync", actor="test", now=datetime.now(UTC))
    assert client.get("/api/v1/figures/daily?start=2026-11-20", headers=token).status_code == 401
