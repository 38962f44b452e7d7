"""The sign-in pages: password, the second factor, sign-out, changing one's password.

Server-rendered (Jinja2), no script. The session cookie is HttpOnly, SameSite=Strict and,
in production, Secure; its value is a random secret the database keeps only hashed. The
sign-in form itself carries a CSRF token bound to a short-lived cookie (double submit), so no
other site can sign a browser in.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Final
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ingest_api.auth import accounts, signin
from ingest_api.core.audit import write_audit
from ingest_api.core.deps import ConnDep, Public, SettingsDep, SignedIn
from ingest_api.core.fieldcrypto import FieldCipher
from ingest_api.core.security import ROLE_LABELS, Principal
from ingest_api.core.sessions import (
    SESSION_COOKIE,
    create_session,
    csrf_matches,
    end_session,
    load_pending,
)
from ingest_api.web.guard import templates

router = APIRouter(include_in_schema=False)
PRE_COOKIE: Final = "sw_signin"
# A session that waits for the second factor lasts this long.
PENDING_HOURS: Final = 0.1


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def page_context(principal: Principal | None) -> dict[str, object]:
    """What the page frame shows of the signed-in person."""
    return {
        "principal": principal,
        "role_label": ROLE_LABELS.get(principal.role, "") if principal else "",
    }


def _set_session(response: Response, value: str, *, secure: bool, max_hours: float) -> None:
    """The session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(max_hours * 3600),
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )


def _login_page(
    request: Request,
    *,
    next_: str,
    username: str = "",
    message: str | None = None,
    expired: bool = False,
    status: int = 200,
) -> HTMLResponse:
    """The sign-in form with a fresh double-submit CSRF token."""
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            **page_context(None),
            "csrf_token": token,
            "next": next_,
            "username": username,
            "message": message,
            "expired": expired,
        },
        status_code=status,
    )
    response.set_cookie(PRE_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, _: Public, next: str = "/", expired: bool = False) -> HTMLResponse:
    """The sign-in page (after an ended session it says so and returns to the page after)."""
    return _login_page(request, next_=safe_next(next), expired=expired)


def _cipher(settings: SettingsDep) -> FieldCipher | None:
    """The field cipher if a data key is set (second-factor secrets are sealed with it)."""
    if settings.data_key is None:
        return None
    return FieldCipher.from_secrets(settings.data_key, settings.data_key_previous)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    _: Public,
    username: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password; then the second factor, or straight to the page asked for."""
    target = safe_next(next)
    if not csrf_matches(request.cookies.get(PRE_COOKIE), csrf_token):
        return _login_page(
            request,
            next_=target,
            username=username,
            message="페이지가 오래되었습니다. 다시 로그인하세요.",
            status=403,
        )
    now = datetime.now(UTC)
    outcome = signin.check_password(
        conn,
        typed_name=username,
        password=password,
        now=now,
        policy=settings.security,
        channel="web",
    )
    if not outcome.ok or outcome.username is None:
        conn.commit()  # the failure is counted and audited whatever follows
        return _login_page(
            request, next_=target, username=username, message=outcome.message, status=401
        )
    if outcome.second_factor_needed:
        cookie, _csrf = create_session(
            conn,
            username=outcome.username,
            second_factor_pending=True,
            now=now,
            max_hours=PENDING_HOURS,
        )
        response: Response = RedirectResponse(
            f"/login/second-factor?next={quote(target, safe='')}", 303
        )
        _set_session(response, cookie, secure=settings.production, max_hours=PENDING_HOURS)
    else:
        cookie, _csrf = create_session(
            conn,
            username=outcome.username,
            second_factor_pending=False,
            now=now,
            max_hours=settings.security.max_hours,
        )
        response = RedirectResponse(target, 303)
        _set_session(
            response, cookie, secure=settings.production, max_hours=settings.security.max_hours
        )
    response.delete_cookie(PRE_COOKIE, path="/login")
    return response


@router.get("/login/second-factor", response_class=HTMLResponse)
def second_factor_form(request: Request, conn: ConnDep, _: Public, next: str = "/") -> Response:
    """The code form, for a session that passed the password step."""
    cookie = request.cookies.get(SESSION_COOKIE)
    pending = load_pending(conn, cookie=cookie, now=datetime.now(UTC)) if cookie else None
    if pending is None:
        return RedirectResponse(f"/login?next={quote(safe_next(next), safe='')}", 303)
    return templates.TemplateResponse(
        request,
        "second_factor.html",
        {**page_context(None), "csrf_token": pending.csrf_token, "next": safe_next(next)},
    )


@router.post("/login/second-factor", response_class=HTMLResponse)
def second_factor(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    _: Public,
    code: Annotated[str, Form(max_length=20)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the code; a good one replaces the waiting session with a full one (new id)."""
    target = safe_next(next)
    now = datetime.now(UTC)
    cookie = request.cookies.get(SESSION_COOKIE)
    pending = load_pending(conn, cookie=cookie, now=now) if cookie else None
    if pending is None or not csrf_matches(pending.csrf_token, csrf_token):
        return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
    outcome = signin.check_second_factor(
        conn,
        username=pending.username,
        code=code,
        now=now,
        policy=settings.security,
        cipher=_cipher(settings),
        channel="web",
    )
    if not outcome.ok:
        if outcome.message and outcome.message.startswith("로그인 실패가 너무 많습니다"):
            end_session(conn, session_id=pending.session_id)
            conn.commit()
            return _login_page(request, next_=target, message=outcome.message, status=401)
        conn.commit()
        return templates.TemplateResponse(
            request,
            "second_factor.html",
            {
                **page_context(None),
                "csrf_token": pending.csrf_token,
                "next": target,
                "message": outcome.message,
            },
            status_code=401,
        )
    end_session(conn, session_id=pending.session_id)
    value, _csrf = create_session(
        conn,
        username=pending.username,
        second_factor_pending=False,
        now=now,
        max_hours=settings.security.max_hours,
    )
    response = RedirectResponse(target, 303)
    _set_session(response, value, secure=settings.production, max_hours=settings.security.max_hours)
    return response


@router.post("/logout")
def logout(conn: ConnDep, principal: SignedIn) -> Response:
    """End this session (audited); back to the sign-in page."""
    if principal.session_id:
        end_session(conn, session_id=principal.session_id)
    write_audit(conn, actor=principal.actor, action="sign_out", subject=f"account:{principal.name}")
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_form(request: Request, principal: SignedIn) -> HTMLResponse:
    """Change one's own password (first thing after a temporary one)."""
    return templates.TemplateResponse(request, "password.html", page_context(principal))


@router.post("/account/password", response_class=HTMLResponse)
def password_change(
    request: Request,
    conn: ConnDep,
    principal: SignedIn,
    current: Annotated[str, Form(max_length=256)],
    new: Annotated[str, Form(max_length=256)],
) -> Response:
    """Check the current password and set the new one."""
    if principal.kind != "user":
        return templates.TemplateResponse(
            request,
            "password.html",
            {**page_context(principal), "message": "계정으로 로그인해야 합니다."},
            status_code=400,
        )
    try:
        accounts.change_password(conn, username=principal.name, current=current, new=new)
    except accounts.AccountError as exc:
        return templates.TemplateResponse(
            request,
            "password.html",
            {**page_context(principal), "message": str(exc)},
            status_code=400,
        )
    return RedirectResponse("/", 303)
