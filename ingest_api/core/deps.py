"""FastAPI dependencies of every router: settings, a pooled connection, who acts, the keys.

Every route names the one decision it needs: a `require(Permission.…)` dependency (the
aliases at the end, e.g. `FleetReader`), or `Public` for the few routes anyone may call.
`ingest_api/web/guard.py: check_routes` refuses to build an app with a route that names none,
and tests/ingest_api/security/test_matrix.py tries every route as every role.

    from ingest_api.core.deps import FleetReader

    @router.get("/api/v1/fleet/summary")
    def summary(principal: FleetReader, conn: ConnDep) -> dict[str, int]: ...
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Final

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from psycopg import sql
from pydantic import BaseModel

from broker.config import key_bytes
from ingest_api.core.config import Settings
from ingest_api.core.db import Conn, Pool
from ingest_api.core.fieldcrypto import FieldCipher
from ingest_api.core.security import APP_DB_ROLE, Permission, Principal
from ingest_api.core.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    csrf_matches,
    load_session,
    load_token,
)

_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> Pool:
    """The process's connection pool (opened in the app's lifespan)."""
    pool: Pool | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise RuntimeError("the app's lifespan has not opened the database pool")
    return pool


def get_conn(pool: Annotated[Pool, Depends(get_pool)]) -> Iterator[Conn]:
    """A pooled connection for one request, as `welfare_app`, committed when the handler succeeds.

    Committed before the answer is sent (scope "function", see ConnDep): a browser that follows
    a redirect at once (after signing in, say) must find what the request wrote.

    Whatever the service logs in as, a request can do only what welfare_app may (it cannot
    UPDATE or DELETE audit rows); the pool returns the connection to its login role afterwards.
    Values the database refuses (a NUL character in text, an unknown program referenced, …)
    answer 400 instead of a server error; the transaction is rolled back.
    """
    with pool.connection() as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_DB_ROLE)))
        conn.commit()
        try:
            yield conn
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            conn.rollback()
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise HTTPException(400, f"rejected by the database: {detail}") from exc


def get_credential_key(settings: Annotated[Settings, Depends(get_settings)]) -> bytes:
    """The card-hash key; without one, members cannot be registered (400 with the reason).

    Not a 5xx: the service itself is healthy, only this write cannot be done until the
    operator sets WELFARE_CREDENTIAL_KEY (and there is deliberately no default key).
    """
    if settings.credential_key is None:
        raise HTTPException(
            400, "registry not configured: set WELFARE_CREDENTIAL_KEY to hash card identifiers"
        )
    return key_bytes(settings.credential_key)


def get_cipher(settings: Annotated[Settings, Depends(get_settings)]) -> FieldCipher:
    """The cipher of personal fields; without WELFARE_DATA_KEY they cannot be read or written."""
    if settings.data_key is None:
        raise HTTPException(
            400, "personal fields not configured: set WELFARE_DATA_KEY to encrypt them at rest"
        )
    return FieldCipher.from_secrets(settings.data_key, settings.data_key_previous)


class NotSignedIn(HTTPException):
    """401: no session or token (pages answer with the sign-in page instead)."""

    def __init__(self, *, expired: bool = False) -> None:
        """`expired`: a session cookie came, but its session has ended."""
        detail = "세션이 만료되었습니다. 다시 로그인하세요." if expired else "로그인이 필요합니다."
        super().__init__(401, detail, headers={"WWW-Authenticate": "Bearer"})
        self.expired = expired


class PasswordChangeRequired(HTTPException):
    """403: the account signs in with a temporary password that must be changed first."""

    def __init__(self) -> None:
        """The message staff read."""
        super().__init__(403, "임시 비밀번호입니다. 먼저 비밀번호를 바꾸세요.")


# The one way to depend on the request's connection (the same object everywhere, so a request
# has exactly one connection and transaction); its teardown commits before the response.
_CONN: Final = Depends(get_conn, scope="function")


def get_principal(
    request: Request,
    conn: Annotated[Conn, _CONN],
    settings: Annotated[Settings, Depends(get_settings)],
) -> Principal | None:
    """Who calls: a bearer token, or the session of the cookie; None when nobody signed in.

    A token that is not valid is a 401 at once (a machine should hear about it); an ended
    session is remembered on the request so that the answer can say "sign in again".
    """
    now = datetime.now(UTC)
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        principal = (
            load_token(conn, value=value.strip(), now=now) if scheme.lower() == "bearer" else None
        )
        if principal is None:
            conn.commit()  # keep what the lookup wrote
            raise HTTPException(
                401,
                "invalid or revoked token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    state = load_session(conn, cookie=cookie, now=now, idle_minutes=settings.security.idle_minutes)
    if state.principal is None:
        request.state.session_expired = state.expired
        conn.commit()  # an ended session is deleted even though this request fails
    return state.principal


class Require:
    """The dependency of a route that needs one permission (the route's authorization decision).

    401 without a session or token; 403 without the permission; 403 when a cookie-signed
    request that changes something lacks the session's CSRF token (header or form field).
    """

    def __init__(self, permission: Permission) -> None:
        """Guard by `permission`."""
        self.permission = permission

    async def __call__(
        self,
        request: Request,
        principal: Annotated[Principal | None, Depends(get_principal)],
    ) -> Principal:
        """The principal, when allowed."""
        if principal is None:
            raise NotSignedIn(expired=getattr(request.state, "session_expired", False))
        if request.method not in _SAFE_METHODS and principal.kind == "user":
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.headers.get("content-type", "").startswith(_FORMS):
                form = await request.form()
                value = form.get(CSRF_FIELD)
                given = value if isinstance(value, str) else None
            if not csrf_matches(principal.csrf_token, given):
                raise HTTPException(403, "요청을 확인할 수 없습니다 (CSRF). 페이지를 새로 여세요.")
        if principal.must_change_password and self.permission != Permission.SIGNED_IN:
            raise PasswordChangeRequired
        if not principal.can(self.permission):
            raise HTTPException(403, "이 기능을 사용할 권한이 없습니다.")
        return principal

    def __repr__(self) -> str:
        """For error messages."""
        return f"Require({self.permission.value})"


class PublicRoute:
    """The explicit decision that anyone may call a route (health check, sign-in page)."""

    def __call__(self) -> None:
        """Nothing to check."""

    def __repr__(self) -> str:
        """For error messages."""
        return "Public"


@cache
def require(permission: Permission) -> Require:
    """The one dependency of `permission` (cached: FastAPI then resolves it once a request)."""
    return Require(permission)


PUBLIC: Final = PublicRoute()


def query_error(field: str, message: str) -> RequestValidationError:
    """A 422 for a rule the schema cannot express, in FastAPI's usual error shape."""
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error", "input": None}]
    )


class ErrorOut(BaseModel):
    """The body of a 4xx answer."""

    detail: str


# Documented on every route that can refuse a request.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Refused (unknown reference, bad value)"},
    401: {"model": ErrorOut, "description": "No session or token (sign in)"},
    403: {"model": ErrorOut, "description": "Not allowed for this role, or no CSRF token"},
    404: {"model": ErrorOut, "description": "Not found (or outside the caller's scope)"},
}

SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[Conn, _CONN]
PoolDep = Annotated[Pool, Depends(get_pool)]
KeyDep = Annotated[bytes, Depends(get_credential_key)]
CipherDep = Annotated[FieldCipher, Depends(get_cipher)]
Public = Annotated[None, Depends(PUBLIC)]

# One alias per decision; a route takes exactly the one it needs.
SignedIn = Annotated[Principal, Depends(require(Permission.SIGNED_IN))]
FiguresReader = Annotated[Principal, Depends(require(Permission.FIGURES_READ))]
FiguresRefresher = Annotated[Principal, Depends(require(Permission.FIGURES_REFRESH))]
ReportDownloader = Annotated[Principal, Depends(require(Permission.REPORT_DOWNLOAD))]
DuplicatesReader = Annotated[Principal, Depends(require(Permission.DUPLICATES_READ))]
RegistryReader = Annotated[Principal, Depends(require(Permission.REGISTRY_READ))]
RegistryManager = Annotated[Principal, Depends(require(Permission.REGISTRY_MANAGE))]
MembersReader = Annotated[Principal, Depends(require(Permission.MEMBERS_READ))]
MembersWriter = Annotated[Principal, Depends(require(Permission.MEMBERS_WRITE))]
MembersImporter = Annotated[Principal, Depends(require(Permission.MEMBERS_IMPORT))]
SensitiveReader = Annotated[Principal, Depends(require(Permission.MEMBERS_SENSITIVE))]
MembersExporter = Annotated[Principal, Depends(require(Permission.MEMBERS_EXPORT))]
RightsOfficer = Annotated[Principal, Depends(require(Permission.MEMBERS_RIGHTS))]
FaceEnroller = Annotated[Principal, Depends(require(Permission.MEMBERS_FACE))]
FleetReader = Annotated[Principal, Depends(require(Permission.FLEET_READ))]
FleetOperator = Annotated[Principal, Depends(require(Permission.FLEET_OPERATE))]
KeysManager = Annotated[Principal, Depends(require(Permission.KEYS_MANAGE))]
AuditReader = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
UsersManager = Annotated[Principal, Depends(require(Permission.USERS_MANAGE))]
