"""The app-wide side of authorization: no route without a decision, and how refusals look.

`check_routes` runs when the app is built: a route that names neither a `require(...)`
dependency nor `Public` (ingest_api/core/deps.py) stops the service from starting, whoever
added it. Refusals of pages become the sign-in page or a Korean error page; API callers get
JSON. Every answer carries headers that keep personal data out of caches and frames.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from typing import Any, Final
from urllib.parse import quote, urlsplit

import fastapi.routing
from fastapi import FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest_api.core.deps import NotSignedIn, PasswordChangeRequired, PublicRoute, Require
from ingest_api.core.security import AccessDenied

templates = Jinja2Templates(directory=str(resources.files("ingest_api.web") / "templates"))

# FastAPI's own documentation routes: public by decision (the schema holds no data).
_DOCS: Final = ("openapi_url", "docs_url", "redoc_url", "swagger_ui_oauth2_redirect_url")
_PAGE_CSP: Final = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _decisions(dependant: Dependant) -> Iterator[str]:
    """The authorization decisions among a route's dependencies (recursively)."""
    for dep in dependant.dependencies:
        call = dep.call
        if isinstance(call, Require):
            yield call.permission.value
        elif isinstance(call, PublicRoute):
            yield "public"
        yield from _decisions(dep)


def _routes(app: FastAPI) -> Iterator[tuple[Any, Any]]:
    """(original route, effective route) of every route, with included routers flattened.

    Newer FastAPI keeps included routers as such in `app.routes`; their routes' effective
    path and dependencies (the router's own included) come from `iter_route_contexts`.
    """
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if contexts is None:
        for route in app.routes:
            yield route, route
        return
    for context in contexts(app.routes):
        yield context.original_route, context


def route_decisions(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) → the decision of every route ('public' or a permission)."""
    docs = {getattr(app, name) for name in _DOCS if getattr(app, name, None)}
    found: dict[tuple[str, str], str] = {}
    missing: list[str] = []
    for original, route in _routes(app):
        path = getattr(route, "path", None) or repr(route)
        methods = sorted(getattr(route, "methods", None) or {"*"})
        if isinstance(original, APIRoute):
            dependant = getattr(route, "dependant", None) or original.dependant
            decisions = set(_decisions(dependant))
            if len(decisions) != 1:
                missing.append(f"{','.join(methods)} {path}: {sorted(decisions) or 'none'}")
                continue
            (decision,) = decisions
        elif path in docs:
            decision = "public"
        elif getattr(original, "name", None) == "static":
            # The pages' own CSS and scripts (files read, never written): public by decision.
            decision, methods = "public", ["GET"]
        else:
            missing.append(f"{','.join(methods)} {path}: not an API route")
            continue
        for method in methods:
            if method != "HEAD":
                found[(method, path)] = decision
    if missing:
        raise RuntimeError(
            "every route needs exactly one authorization decision (a require(...) dependency"
            " or Public from ingest_api/core/deps.py); these have none or several: "
            + "; ".join(missing)
        )
    return found


def _wants_page(request: Request) -> bool:
    """Whether the caller is a person's browser on a page (not the JSON API)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


def _same_site_referer(request: Request) -> str | None:
    """The path (and query) of the page a form was sent from, if it was one of ours."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path.startswith("/"):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    """A refusal as a page staff can read."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "title": title, "detail": detail, "principal": None},
        status_code=status,
    )


def install(app: FastAPI) -> None:
    """Check every route's decision; add the refusal handlers and the security headers."""
    app.state.route_decisions = route_decisions(app)

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        """Pages ask to sign in (and come back afterwards); the API answers 401.

        A form sent after the session ended cannot be replayed: the browser goes back to the
        form's page after signing in, where its back button still holds what was typed.
        """
        if _wants_page(request):
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            else:
                target = _same_site_referer(request) or "/"
            expired = "&expired=1" if exc.expired else ""
            return RedirectResponse(f"/login?next={quote(target, safe='')}{expired}", 303)
        return JSONResponse({"detail": exc.detail}, 401, headers=exc.headers)

    @app.exception_handler(PasswordChangeRequired)
    async def _change_password(request: Request, exc: PasswordChangeRequired) -> Response:
        """A temporary password: pages go to the change form first."""
        if _wants_page(request) and request.method == "GET":
            return RedirectResponse("/account/password", 303)
        return JSONResponse({"detail": exc.detail}, 403)

    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, exc: AccessDenied) -> Response:
        """Another center's (non-personal) resource: 403 with the reason."""
        if _wants_page(request):
            return error_page(request, 403, "권한이 없습니다", str(exc))
        return JSONResponse({"detail": str(exc)}, 403)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        """Other refusals: a page for browsers, FastAPI's JSON otherwise."""
        if _wants_page(request) and exc.status_code in (403, 404):
            title = "권한이 없습니다" if exc.status_code == 403 else "찾을 수 없습니다"
            return error_page(request, exc.status_code, title, str(exc.detail))
        headers = getattr(exc, "headers", None)
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=headers)

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """No caching of answers (they may hold personal data), no framing, no sniffing."""
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Our own pages tell us where a form came from (to return there); nobody else learns.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith(
            "text/html"
        ) and request.url.path not in (app.docs_url, app.redoc_url):
            response.headers.setdefault("Content-Security-Policy", _PAGE_CSP)
        return response
