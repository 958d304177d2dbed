"""HTTP plumbing shared by every domain: problem+json errors and role checks on each route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal, authenticate_token, recently_checked
from bastion.core.db import unavailable
from bastion.core.errors import DomainError

PROBLEM_JSON = "application/problem+json"
#: How long a client waits before sending again a request the database could not take (503).
RETRY_DATABASE_SECONDS = 1

logger = logging.getLogger(__name__)

#: A database row id in a path: bounded to a 64-bit integer, so an absurd id is a 422, never a 5xx from the driver.
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]

#: On every response of every app (console pages, the API, /docs, static files): nothing from another origin, no
#: framing, no sniffing, no referrer, no caching of what may show match results or previews.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every response that does not set its own value."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Problem(DomainError):
    """An HTTP-level refusal a route raises itself (a missing field, a bad token), answered as problem+json."""

    def __init__(self, status: int, title: str, detail: str = "", *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        #: Response headers the answer needs (``Retry-After`` on a 429, say).
        self.headers = headers or {}
        self.extra = extra

    def problem_extra(self) -> dict[str, Any]:
        return self.extra


def problem_response(status: int, title: str, detail: str = "", *, headers: dict[str, str] | None = None,
                     **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    sent = {**({"WWW-Authenticate": "Bearer"} if status == 401 else {}), **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=sent or None)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_domain_error(_request: Request, exc: Exception) -> JSONResponse:
        """The API's one handler of domain errors: problem+json with the error's own status and title."""
        assert isinstance(exc, DomainError)
        return problem_response(exc.status, exc.title, str(exc) if str(exc) != exc.title else "",
                                headers=exc.headers if isinstance(exc, Problem) else None, **exc.problem_extra())

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(exc.status_code, _TITLES.get(exc.status_code, "Error"), str(exc.detail or ""))

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return problem_response(422, "Invalid request", detail, errors=errors)

    async def on_database(_request: Request, exc: Exception) -> JSONResponse:
        """A database that cannot take the request now (``core/db.py: unavailable``): 503 with ``Retry-After``,
        for the client to send the request again, not a 500. Nothing of the driver's message is answered or logged
        (it may quote the statement's parameters). Any other error of the driver goes on as before, to the server's
        error log and a 500; so does one met after the answer began (a streamed export), which no status can tell."""
        assert isinstance(exc, DBAPIError)
        if not unavailable(exc):
            raise exc
        logger.warning("database unavailable (%s): answered 503", type(exc.orig).__name__)
        return problem_response(503, "Service unavailable", "the database could not take this request now; send it "
                                "again", headers={"Retry-After": str(RETRY_DATABASE_SECONDS)})

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    503: "Service unavailable",
}


def require(roles: Iterable[Role]) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency that admits a bearer token of one of ``roles`` (401 without one, 403 otherwise).

    Async: a token checked in the last second is answered on the event loop, with no hop to the thread pool; only a
    check that reads the database goes there.
    """
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Problem(401, "Unauthorized", "an API token is required: Authorization: Bearer <token>")
        db = request.app.state.ctx.db
        principal = recently_checked(db, presented.strip()) \
            or await run_in_threadpool(authenticate_token, db, presented.strip())
        if principal is None:
            raise Problem(401, "Unauthorized", "the token is unknown or revoked")
        if principal.role not in allowed:
            raise Problem(403, "Forbidden", f"role {principal.role.value!r} may not do this")
        return principal

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the route x role matrix test
    return dependency


__all__ = ["SECURITY_HEADERS", "HTTPException", "Problem", "RowId", "SecurityHeaders", "install_problem_handlers",
           "problem_response", "require"]
