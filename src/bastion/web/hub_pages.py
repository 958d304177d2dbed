"""The hub's console: competent authorities issue removal orders and referrals and follow them in a browser.

The API (``hub/api.py``) takes an order signed with the authority's own Ed25519 key; here a person logged in with
a console account of role ``authority``, linked to one registered authority (``hub_authority_users``), issues it
instead, as on Europol's PERCI. The order's events name that user; the hub signs the order to the provider as it
does every order. Pages reuse the platform console's login, sessions, CSRF, error pages and security headers
(``web/console.py``), the live one-hour clock (``static/orders.js``) and the receipt-to-action chart
(``web/order_pages.py``). ``static/live.js`` refreshes the parts of a page marked ``data-live``, so an answer
from the provider shows without a reload.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from bastion.core.auth import roles
from bastion.core.auth.roles import Role
from bastion.core.auth.services import SessionUser
from bastion.core.auth.throttle import LoginGuard
from bastion.core.context import context
from bastion.hub import services
from bastion.hub.interfaces import HubError, HubForbidden
from bastion.hub.models import Authority, Provider
from bastion.orders.wire import LEGAL_BASIS, Clarification, MaterialType, Referral, RemovalOrder
from bastion.web.console import (
    ConsoleRoute,
    check_csrf,
    flash,
    page,
    role_required,
    session_router,
)
from bastion.web.order_pages import CHART_WIDTH, chart_bars, clock_label, when

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.HUB_READ))]
Issuer = Annotated[SessionUser, Depends(role_required(roles.HUB_ISSUE))]
HOME = "/console/hub/orders"
NAV = (("Orders", HOME, roles.HUB_READ), ("Issue an order", "/console/hub/orders/new", roles.HUB_ISSUE))
STATIC = Path(__file__).parent / "static"
#: The form's fields that are text as typed (the rest are lists, tick-boxes, or come from the registry).
TEXT_FIELDS = ("reference", "reasons", "additional_reasons", "follow_up_contact", "authority.representative",
               "authority.file_number", "authority.address", "authority.telephone", "authority.email",
               "redress.body", "redress.deadline", "redress.law")
MATERIAL_LABELS = {
    MaterialType.INCITES: "(a) incites to commit terrorist offences",
    MaterialType.SOLICITS_OFFENCE: "(b) solicits a person or group to commit or contribute to terrorist offences",
    MaterialType.SOLICITS_PARTICIPATION: "(c) solicits participation in the activities of a terrorist group",
    MaterialType.INSTRUCTS: "(d) instructs on making or using explosives, firearms, weapons or hazardous "
                            "substances, or other methods, for terrorist offences",
    MaterialType.THREATENS: "(e) threatens to commit a terrorist offence",
}


def with_console(app: FastAPI) -> FastAPI:
    """Add the console to a hub app (``hub/app.py: create_hub_app``): login, these pages, the static files."""
    app.state.console_home = HOME
    app.state.console_nav = NAV
    ctx = app.state.ctx
    app.state.login_guard = LoginGuard.from_settings(ctx.db, ctx.settings, ctx.clock)
    app.include_router(session_router)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _acting_for(user: SessionUser) -> int | None:
    """The user whose authority scopes what they see; ``None`` for an admin, who sees every order."""
    return None if user.principal.role is Role.ADMIN else user.principal.id


def _own_authority(request: Request, user: SessionUser) -> Authority:
    """The authority the user issues for (``HubForbidden``, the error page, for one acting for none)."""
    if user.principal.role is Role.ADMIN:
        raise HubForbidden("Only an authority issues orders.")
    return services.authority_of_user(context(request).db, user.principal.id)


# --- the list of orders -------------------------------------------------------------------------------------------


def _with_clock(view: dict[str, Any], deadline: dt.datetime | None, authority: Authority | None,
                now: dt.datetime) -> dict[str, Any]:
    """An order's view with its one-hour clock (as the hub sees it) and whether it is the user's own."""
    view["deadline_at"] = deadline.isoformat() if deadline else ""
    view["clock"] = clock_label((deadline - now).total_seconds()) if deadline else ""
    view["overdue"] = bool(deadline and deadline < now)
    view["own"] = authority is None or view["authority"] == authority.name
    return view


@router.get("/console/hub/orders")
async def orders_page(request: Request, user: Reader) -> Response:
    """Refreshed every two seconds by each open tab (``static/live.js``): one read transaction."""
    ctx = context(request)
    board = await run_in_threadpool(services.board, ctx.db, _acting_for(user))
    now = ctx.clock.now()
    rows = [_with_clock(view, board.deadlines.get(view["hub_reference"]), board.authority, now)
            for view in board.orders]
    bars = chart_bars(board.actioned)
    return page(request, "hub_orders.html", user, orders=rows, authority=board.authority, now=now.isoformat(),
                 when=when, bars=bars, chart_width=CHART_WIDTH, chart_height=max(14, len(bars) * 14))


@router.get("/console/hub/orders/new")
async def new_order(request: Request, user: Issuer) -> Response:
    authority = await run_in_threadpool(_own_authority, request, user)
    return await _form_page(request, user, authority, {"kind": "removal_order"}, {})


async def _form_page(request: Request, user: SessionUser, authority: Authority, values: dict[str, Any],
                     errors: dict[str, str], *, status_code: int = 200) -> Response:
    providers = await run_in_threadpool(services.providers, context(request).db)
    return page(request, "hub_issue.html", user, status_code=status_code, authority=authority, values=values,
                 errors=errors, providers=providers, materials=MATERIAL_LABELS, legal_basis=LEGAL_BASIS)


# --- issuing ------------------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _utc(text: str) -> dt.datetime | None:
    """A ``datetime-local`` value, read as UTC (the form says so); ``None`` when empty."""
    if not text.strip():
        return None
    value = dt.datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _message(values: dict[str, Any], authority: Authority, provider: Provider | None,
             now: dt.datetime) -> RemovalOrder | Referral:
    """The Annex I order (or referral) the form describes; raises ``ValidationError`` or ``ValueError``."""
    by_authority = {"type": authority.authority_type, "name": authority.name, "member_state": authority.member_state,
                    **{name.split(".")[1]: values[name] for name in TEXT_FIELDS if name.startswith("authority.")}}
    common: dict[str, Any] = {
        "reference": values["reference"], "issuing_member_state": authority.member_state,
        "addressee": provider.name if provider else "", "issued_at": now, "urls": _lines(values["urls"]),
        "content_ids": _lines(values["content_ids"]), "reasons": values["reasons"], "authority": by_authority}
    if values["kind"] == "referral":
        return Referral.model_validate(common)
    return RemovalOrder.model_validate({
        **common, "contact_point": provider.contact_point_url if provider else "",
        "establishment_member_state": provider.member_state if provider else "",
        "material_types": values["material_types"], "additional_reasons": values["additional_reasons"],
        "non_disclosure": values["non_disclosure"], "non_disclosure_until": _utc(values["non_disclosure_until"]),
        "follow_up_contact": values["follow_up_contact"],
        "redress": {name.split(".")[1]: values[name] for name in TEXT_FIELDS if name.startswith("redress.")}})


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: str(form.get(name) or "") for name in TEXT_FIELDS}
    values.update(kind="referral" if form.get("kind") == "referral" else "removal_order",
                  provider=str(form.get("provider") or ""), urls=str(form.get("urls") or ""),
                  content_ids=str(form.get("content_ids") or ""),
                  material_types=[str(v) for v in form.getlist("material_types")],
                  non_disclosure=form.get("non_disclosure") == "on",
                  non_disclosure_until=str(form.get("non_disclosure_until") or ""))
    return values


#: The form's fields as the officer reads them (the labels of ``templates/hub_issue.html`` and the clarification).
LABELS = {
    "reference": "Your reference", "provider": "Hosting service provider", "urls": "Exact URLs",
    "content_ids": "Further identification of the content", "reasons": "Reasons",
    "material_types": "Type of material", "additional_reasons": "Additional information",
    "non_disclosure_until": "Non-disclosure until", "authority.file_number": "File number",
    "authority.representative": "Name of the representative", "authority.address": "Address",
    "authority.telephone": "Telephone", "authority.email": "Email", "follow_up_contact": "Contact point for follow-up",
    "redress.body": "Competent body or court", "redress.deadline": "Deadline for a challenge",
    "redress.law": "Link to the national law", "contact_point": "Hosting service provider",
    "establishment_member_state": "Hosting service provider", "issuing_member_state": "Issuing Member State",
    "explanation": "Explanation",
}
#: The order's own checks (``wire.RemovalOrder._consistent``), said for the officer.
_WHOLE_ORDER = {
    "non_disclosure and non_disclosure_until go together":
        "Non-disclosure: tick the box and give the date until which the provider must not tell, or do neither.",
    "non_disclosure_until must be after issued_at": "Non-disclosure: the date must be in the future.",
    "non_disclosure_until may be at most": "Non-disclosure: at most twelve weeks from now (six weeks, extended "
                                           "once by six, Art. 11(3)).",
    "authority.member_state must be the issuing Member State":
        "Your authority's Member State must be the issuing Member State.",
}


def _plain(error: Any, label: str, name: str) -> str:
    """One pydantic error as a sentence an officer can act on: the field's label, then what to do."""
    kind, context, text = error["type"], error.get("ctx") or {}, str(error["msg"]).removeprefix("Value error, ")
    if name == "provider" and kind in ("string_too_short", "missing"):
        return f"{label}: choose the provider the order is addressed to."
    if kind == "string_too_short":
        wanted = context.get("min_length", 1)
        return f"{label}: fill this in." if wanted == 1 else f"{label}: at least {wanted} characters."
    if kind == "string_too_long":
        return f"{label}: at most {context.get('max_length')} characters."
    if kind == "too_short":
        return f"{label}: tick at least one." if name == "material_types" else \
            f"{label}: give at least one, one per line."
    if kind == "too_long":
        return f"{label}: at most {context.get('max_length')}, one per line."
    if kind == "string_pattern_mismatch":
        return f"{label}: letters, digits and . _ : / - only, starting with a letter or a digit; no spaces."
    if kind == "missing":
        return f"{label}: fill this in."
    line = next((part for part in error["loc"] if isinstance(part, int)), None)
    where = f" (line {line + 1})" if line is not None and name in ("urls", "content_ids") else ""
    if kind == "value_error" and text.startswith("must be an absolute"):
        return f"{label}{where}: each must be a full web address starting with https:// or http://, without spaces."
    return f"{label}{where}: {text[:1].lower()}{text[1:]}" if text else f"{label}: check this."


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors by form field (``authority.email``, ``urls``...) in an officer's words; errors of the whole
    order under ``""``."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        if name in ("addressee", "contact_point", "establishment_member_state"):
            name = "provider"
        if name not in _FIELDS:
            text = str(error["msg"]).removeprefix("Value error, ")
            errors.setdefault("", next((plain for start, plain in _WHOLE_ORDER.items() if text.startswith(start)),
                                       text))
            continue
        errors.setdefault(name, _plain(error, LABELS.get(name, name), name))
    return errors


_FIELDS = frozenset({*TEXT_FIELDS, "provider", "urls", "content_ids", "material_types", "non_disclosure_until",
                     "explanation"})


@router.post("/console/hub/orders")
async def issue_order(request: Request, user: Issuer) -> Response:
    ctx = context(request)
    form = await request.form(max_files=0, max_fields=80)
    check_csrf(user, str(form.get("csrf_token") or ""))
    authority = await run_in_threadpool(_own_authority, request, user)
    values = _form_values(form)
    chosen = [p for p in await run_in_threadpool(services.providers, ctx.db) if str(p.id) == values["provider"]]
    try:
        message = _message(values, authority, chosen[0] if chosen else None, ctx.clock.now())
    except ValidationError as exc:
        return await _form_page(request, user, authority, values, _field_errors(exc), status_code=422)
    except ValueError:  # a date that is not one
        return await _form_page(request, user, authority, values, {"non_disclosure_until": (
            "Non-disclosure until: a date and time, e.g. 2026-12-31 12:00 (UTC).")}, status_code=422)
    try:
        view, created = await run_in_threadpool(lambda: services.issue(
            ctx.db, authority, None, message, clock=ctx.clock, console_user=user.principal.name))
    except HubError as exc:
        return await _form_page(request, user, authority, values, {"": str(exc)}, status_code=exc.status)
    reference = view["hub_reference"]
    response = RedirectResponse(f"/console/hub/orders/{reference}", status_code=303)
    if not created:
        text = f"{message.reference} was issued before as {reference}; nothing new was sent."
    elif view["state"] == "linked":
        text = f"Issued as {reference}: an active order ({view['linked_to']}) already covers this content, so it " \
               "was linked to it and not sent again."
    else:
        text = f"Issued as {reference}; the hub is delivering it to {view['provider']}."
    flash(response, request, "ok", text)
    return response


# --- one order ----------------------------------------------------------------------------------------------------


@router.get("/console/hub/orders/{reference}")
async def order_page(request: Request, reference: str, user: Reader) -> Response:
    return await _order_page(request, user, reference, {}, {})


async def _order_page(request: Request, user: SessionUser, reference: str, values: dict[str, str],
                      errors: dict[str, str], *, status_code: int = 200) -> Response:
    """Refreshed every two seconds by each open tab (``static/live.js``): one read transaction."""
    ctx = context(request)
    sheet = await run_in_threadpool(services.sheet, ctx.db, _acting_for(user), reference)
    now = ctx.clock.now()
    authority, order = sheet.authority, _with_clock(sheet.order, sheet.deadline, sheet.authority, now)
    until = order["scrutiny_until"]
    may_scrutinise = (authority is not None and order["scrutiny_member_state"] == authority.member_state
                      and order["state"] != "ended" and until is not None and now <= dt.datetime.fromisoformat(until))
    return page(request, "hub_order.html", user, status_code=status_code, order=order, now=now.isoformat(),
                 may_clarify=authority is not None and order["own"] and order["state"] == "unable",
                 may_scrutinise=may_scrutinise, values=values, errors=errors, materials=MATERIAL_LABELS, when=when)


@router.post("/console/hub/orders/{reference}/clarification")
async def clarify(request: Request, reference: str, user: Issuer) -> Response:
    ctx = context(request)
    form = await request.form(max_files=0, max_fields=10)
    check_csrf(user, str(form.get("csrf_token") or ""))
    authority = await run_in_threadpool(_own_authority, request, user)
    values = {name: str(form.get(name) or "") for name in ("explanation", "urls", "content_ids")}
    try:
        message = Clarification(order_reference=reference, explanation=values["explanation"],
                                urls=_lines(values["urls"]), content_ids=_lines(values["content_ids"]))
    except ValidationError as exc:
        errors = {name: text.replace(LABELS["urls"], "Corrected URLs").replace(LABELS["content_ids"], "Content ids")
                  for name, text in _field_errors(exc).items()}
        return await _order_page(request, user, reference, values, errors, status_code=422)
    try:
        await run_in_threadpool(lambda: services.clarify(ctx.db, authority, message, clock=ctx.clock,
                                                         console_user=user.principal.name))
    except HubError as exc:
        return await _order_page(request, user, reference, values, {"": str(exc)}, status_code=exc.status)
    response = RedirectResponse(f"/console/hub/orders/{reference}", status_code=303)
    flash(response, request, "ok", "Clarification sent; the provider's hour restarts when it arrives.")
    return response


@router.post("/console/hub/orders/{reference}/scrutiny")
async def scrutinise(request: Request, reference: str, user: Issuer) -> Response:
    """Art. 4: an authority of the provider's Member State finds the order sound, or infringing (it then ends)."""
    ctx = context(request)
    form = await request.form(max_files=0, max_fields=10)
    check_csrf(user, str(form.get("csrf_token") or ""))
    authority = await run_in_threadpool(_own_authority, request, user)
    values = {"finding": str(form.get("finding") or ""), "scrutiny_reasons": str(form.get("reasons") or "").strip()}
    errors = {}
    if values["finding"] not in ("infringement", "sound"):
        errors["finding"] = "Choose whether the order infringes the Regulation."
    if not 1 <= len(values["scrutiny_reasons"]) <= 5000:
        errors["scrutiny_reasons"] = "Give your reasons (up to 5,000 characters)."
    if errors:
        return await _order_page(request, user, reference, values, errors, status_code=422)
    view = await run_in_threadpool(lambda: services.scrutinise(
        ctx.db, authority, reference, infringement=values["finding"] == "infringement",
        reasons=values["scrutiny_reasons"], clock=ctx.clock, console_user=user.principal.name))
    response = RedirectResponse(f"/console/hub/orders/{reference}", status_code=303)
    flash(response, request, "ok", "The order is ended; the provider is told to reinstate the content."
           if view["state"] == "ended" else "Recorded: no infringement found.")
    return response
