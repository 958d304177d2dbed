"""The console's kernel: sessions, role gates, CSRF, flash messages, rendering, login and logout, and the one
handler that turns errors into pages (``ConsoleRoute``). Each domain's pages sit beside it (``bank_pages``,
``match_pages``, ``review_pages``, ``order_pages``, ``report_pages``, ``minors_pages``, ``hub_pages``...).

Pages need a console session (cookie); anonymous visitors are sent to /login. Each page checks the session
user's role against the same policy as the API (``bastion.core.auth.roles``). Every POST carries the session's
CSRF token in a hidden ``csrf_token`` field; the login form, which has no session yet, uses a double-submit
cookie.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.roles import Role
from bastion.core.auth.services import (
    SessionUser,
    close_session,
    open_session,
    session_user,
)
from bastion.core.auth.throttle import LoginGuard, Outcome
from bastion.core.context import context
from bastion.core.errors import DomainError
from bastion.core.http import SECURITY_HEADERS

SESSION_COOKIE = "bastion_session"
LOGIN_CSRF_COOKIE = "bastion_login_csrf"
FLASH_COOKIE = "bastion_flash"
#: Thumbnails of uploads are downscaled to fit this square, server-side, and never written to disk.
THUMBNAIL_PX = 256
#: Bank pages list this many of the most recent additions.
RECENT_ENTRIES = 50
#: Long signal values (a video's frame list) are cut to this many characters on the page.
VALUE_CHARS = 72
LOGIN_FAILED = "Invalid username or password."
LOGIN_LOCKED = "Too many failed logins. Try again in {seconds} seconds."
LOGIN_BUSY = "The console is busy checking other logins. Try again in a moment."

_templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)


# --- errors that become pages -------------------------------------------------------------------------------


class _LoginRequired(Exception):
    """No valid session: answered with a redirect to the login page."""


class PageError(Exception):
    """Answered with the error page: ``status`` and ``title`` (403 Forbidden, 404 Not found) and a message."""

    def __init__(self, status: int, title: str, message: str, user: SessionUser | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.user = user


def _denied(message: str, user: SessionUser | None = None) -> PageError:
    return PageError(403, "Forbidden", message, user)


class ConsoleRoute(APIRoute):
    """Turns the console's own exceptions into pages and puts the security headers on every response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except _LoginRequired:
                response = RedirectResponse("/login", status_code=303)
            except PageError as exc:
                response = page(request, "error.html", exc.user, status_code=exc.status,
                                 title=exc.title, message=exc.message)
            except DomainError as exc:  # the console's one handler of domain errors: the error page
                # (the session's look-up writes, its expiry sliding: off the event loop, as the pages' own are)
                response = page(request, "error.html", await run_in_threadpool(_session, request),
                                status_code=exc.status, title=exc.title, message=str(exc))
            except RequestValidationError:  # an address that cannot be right (a case id that is not a number...)
                response = page(request, "error.html", await run_in_threadpool(_session, request), status_code=404,
                                title="Not found", message="There is no such page.")
            response.headers.update(SECURITY_HEADERS)
            return response

        return route


router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
#: Login, logout and the landing redirect alone, for an app with its own pages (the hub); ``router`` has them too.
session_router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


# --- sessions, roles and CSRF -------------------------------------------------------------------------------


def _session(request: Request) -> SessionUser | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    ctx = context(request)
    return session_user(ctx.db, cookie, ctx.settings.session_ttl_seconds, ctx.clock)


def role_required(allowed: Iterable[Role]) -> Callable[[Request], SessionUser]:
    """A dependency admitting a logged-in user of one of ``allowed`` (/login without one, else 403)."""
    allowed = frozenset(allowed)

    def dependency(request: Request) -> SessionUser:
        user = _session(request)
        if user is None:
            raise _LoginRequired
        if user.principal.role not in allowed:
            raise _denied(f"Your role ({_role_label(user.principal.role)}) may not open this page.", user)
        return user

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the route x role matrix test
    return dependency


def check_csrf(user: SessionUser, presented: str) -> None:
    if not presented or not hmac.compare_digest(presented.encode(), user.csrf_token.encode()):
        raise _denied("The form was stale or did not come from this console. Reload the page and try again.",
                      user)


Viewer = Annotated[SessionUser, Depends(role_required(roles.READ_BANKS))]
Curator = Annotated[SessionUser, Depends(role_required(roles.CURATE_BANKS))]
MatchUser = Annotated[SessionUser, Depends(role_required(roles.MATCH))]
CsrfField = Annotated[str, Form()]


def _secure(request: Request) -> bool:
    """Cookies are ``Secure`` when configured so (TLS ends at a proxy) or when this request came over HTTPS."""
    return context(request).settings.secure_cookies or request.url.scheme == "https"


def _set_cookie(response: Response, request: Request, key: str, value: str, *, path: str = "/",
                max_age: int | None = None) -> None:
    response.set_cookie(key, value, max_age=max_age, path=path, httponly=True, samesite="strict",
                        secure=_secure(request))


def _delete_cookie(response: Response, request: Request, key: str, *, path: str = "/") -> None:
    response.delete_cookie(key, path=path, httponly=True, samesite="strict", secure=_secure(request))


# --- flash messages (one message carried across a redirect in a short-lived cookie) -------------------------


def flash(response: Response, request: Request, kind: str, text: str) -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": text[:500]}).encode()).decode()
    _set_cookie(response, request, FLASH_COOKIE, payload, path="/console", max_age=60)


def _take_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(data, dict) or data.get("kind") not in ("ok", "error"):
        return None
    if not isinstance(data.get("text"), str):
        return None
    return {"kind": str(data["kind"]), "text": str(data["text"])}


# --- rendering ----------------------------------------------------------------------------------------------


def _role_label(role: Role) -> str:
    return role.value.replace("_", " ")


#: The platform console's menu: label, address, roles that see it. Another app (the hub) sets ``app.state.console_nav``.
NAV: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("Queues", "/console/queues", roles.READ_QUEUES),
    ("Cases", "/console/cases", roles.CASE_SEARCH),
    ("Banks", "/console/banks", roles.READ_BANKS),
    ("Exchanges", "/console/exchanges", roles.EXCHANGES),
    ("Match", "/console/match", roles.MATCH),
    ("Classifiers", "/console/classifiers", roles.CLASSIFIERS),
    ("Policy", "/console/policy", roles.READ_QUEUES),
    ("Orders", "/console/orders", roles.ORDERS_READ),
    ("Reports", "/console/reports", roles.REPORTS),
    ("Minors", "/console/minors", roles.MINORS_READ - {Role.PLATFORM}),
    ("Designations", "/console/designations", roles.DESIGNATIONS_READ),
    ("Crises", "/console/crises", roles.CRISIS_READ),
    ("Feed audits", "/console/feed/audits", roles.FEED_AUDITS),
    ("Transparency", "/console/transparency", roles.TRANSPARENCY),
    ("Statements", "/console/transparency/statements", roles.SOR_SUBMISSIONS),
    ("Settings", "/console/settings", roles.REVIEW),
)


def page(request: Request, template: str, user: SessionUser | None, *, status_code: int = 200,
          **values: Any) -> HTMLResponse:
    flash = _take_flash(request) if user is not None else None
    nav = []
    if user is not None:
        role = user.principal.role
        menu = getattr(request.app.state, "console_nav", NAV)
        nav = [(label, href) for label, href, allowed in menu if role in allowed]
    # the longest entry the address starts with is current (Statements under /console/transparency/...)
    current = max((href for _, href in nav if request.url.path.startswith(href)), key=len, default="")
    response = _templates.TemplateResponse(request, template, {
        "user": user,
        "role_label": _role_label(user.principal.role) if user is not None else "",
        "nav": nav,
        "current": current,
        "path": request.url.path,
        "flash": flash,
        **values,
    }, status_code=status_code)
    if flash is not None:
        _delete_cookie(response, request, FLASH_COOKIE, path="/console")
    return response




def _landing(request: Request, role: Role) -> str:
    """Where a user lands: the app's own home when it sets ``app.state.console_home`` (the hub), else by role."""
    home = getattr(request.app.state, "console_home", None)
    return home if isinstance(home, str) else _home(role)


def _home(role: Role) -> str:
    if role in roles.REVIEW_HOME:
        return "/console/queues"
    if role in roles.TRANSPARENCY_HOME:
        return "/console/transparency"
    if role in roles.READ_BANKS or role not in roles.MATCH:
        return "/console/banks"
    return "/console/match"


def truncate(value: str, chars: int) -> str:
    """A long value (a video's frame list) cut for a table cell."""
    return value if len(value) <= chars else value[:chars] + "…"


# --- login and logout ---------------------------------------------------------------------------------------


@session_router.get("/")
def root(request: Request) -> RedirectResponse:
    user = _session(request)
    return RedirectResponse("/login" if user is None else _landing(request, user.principal.role), status_code=303)


@session_router.get("/login")
def login_form(request: Request) -> Response:
    user = _session(request)
    if user is not None:
        return RedirectResponse(_landing(request, user.principal.role), status_code=303)
    return _login_page(request)


def _login_page(request: Request, *, error: str = "", username: str = "", status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", None, status_code=status_code, csrf_token=token, error=error,
                     username=username)
    _set_cookie(response, request, LOGIN_CSRF_COOKIE, token, path="/login", max_age=3600)
    return response


@session_router.post("/login")
def login(request: Request, csrf_token: CsrfField = "", username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "") -> Response:
    ctx = context(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not csrf_token or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        raise _denied("The login form was stale or did not come from this console. "
                      "Reload the page and try again.")
    if not username or not password:
        return _login_page(request, error=LOGIN_FAILED, username=username[:200], status_code=401)
    guard: LoginGuard = request.app.state.login_guard
    address = request.client.host if request.client else "unknown"
    attempt = guard.attempt(username, password, address)
    if attempt.outcome is Outcome.LOCKED:
        response = _login_page(request, error=LOGIN_LOCKED.format(seconds=attempt.retry_after),
                               username=username[:200], status_code=429)
        response.headers["Retry-After"] = str(attempt.retry_after)
        return response
    if attempt.outcome is Outcome.BUSY:
        response = _login_page(request, error=LOGIN_BUSY, username=username[:200], status_code=503)
        response.headers["Retry-After"] = str(attempt.retry_after)
        return response
    user = attempt.user
    if user is None:
        return _login_page(request, error=LOGIN_FAILED, username=username[:200], status_code=401)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a fresh session for every login; the browser's old one ends
        close_session(ctx.db, previous)
    new = open_session(ctx.db, user, ctx.settings.session_ttl_seconds, ctx.clock)
    response = RedirectResponse(_landing(request, Role(user.role)), status_code=303)
    _set_cookie(response, request, SESSION_COOKIE, new.cookie)
    _delete_cookie(response, request, LOGIN_CSRF_COOKIE, path="/login")
    return response


@session_router.post("/logout")
def logout(request: Request, csrf_token: CsrfField = "") -> Response:
    ctx = context(request)
    user = _session(request)
    if user is None:
        raise _LoginRequired
    check_csrf(user, csrf_token)
    close_session(ctx.db, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    _delete_cookie(response, request, SESSION_COOKIE)
    return response


router.include_router(session_router)
