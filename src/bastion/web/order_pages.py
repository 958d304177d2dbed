"""Console pages of the contact point: every removal order with its one-hour clock, how fast orders were done, and
one order's page, where a senior moderator executes it or answers that it cannot be (Annex III).

With ``BASTION_ORDERS_AUTO_EXECUTE=0`` a person confirms every order while its hour runs: here, with the CLI
(``bastion orders execute``, ``bastion orders inability``) or the API, all through the same services.
The clock is rendered by the server (time left when the page was made) and kept live by ``static/orders.js`` from
each row's deadline; the chart of receipt-to-action times is an SVG drawn here, so nothing is fetched from outside.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.context import context
from bastion.core.db import Database
from bastion.orders import services
from bastion.orders.events import OrderState
from bastion.orders.interfaces import OrderError
from bastion.orders.models import ReceivedOrder
from bastion.orders.services import ContactPoint, received_orders
from bastion.orders.wire import InabilityReason
from bastion.web.console import ConsoleRoute, check_csrf, flash, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.ORDERS_READ))]
Actor = Annotated[SessionUser, Depends(role_required(roles.ORDERS_ACT))]
#: Annex III section B, as the form offers it.
INABILITY_LABELS = {
    InabilityReason.FORCE_MAJEURE: "Force majeure or de facto impossibility not attributable to us, including "
                                   "objectively justifiable technical or operational reasons",
    InabilityReason.MANIFEST_ERROR: "The order contains manifest errors",
    InabilityReason.INSUFFICIENT_INFORMATION: "The order does not contain sufficient information",
}
#: Bars in the chart: the most recent executed orders.
CHART_ORDERS = 40
CHART_WIDTH = 600


def when(value: str | dt.datetime | None) -> str:
    """Every time on the orders and hub pages, one way: ``2026-11-29 10:00:00 UTC``; an em dash for none."""
    if not value:
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock_label(seconds: float) -> str:
    """``12:34 left`` or ``overdue by 3:02`` (minutes:seconds), as the live clock writes it too."""
    whole = abs(int(seconds))
    text = f"{whole // 60}:{whole % 60:02d}"
    return f"{text} left" if seconds >= 0 else f"overdue by {text}"


def receipt_to_action(db: Database, limit: int = CHART_ORDERS) -> list[dict[str, Any]]:
    """Seconds from receipt to action of the last executed orders, scaled to bar widths (one hour = full width)."""
    with db.read() as session:
        rows = list(session.execute(
            select(ReceivedOrder.reference, ReceivedOrder.received_at, ReceivedOrder.action_at)
            .where(ReceivedOrder.action_at.is_not(None)).order_by(ReceivedOrder.action_at.desc()).limit(limit)))
    return chart_bars([(reference, received, acted) for reference, received, acted in reversed(rows)])


def chart_bars(rows: Iterable[tuple[str, dt.datetime, dt.datetime | None]]) -> list[dict[str, Any]]:
    """Bars of ``templates/_receipt_chart.html`` from (order, received, actioned), oldest first; the hub draws its
    own orders' chart with it too."""
    bars = []
    for i, (reference, received, acted) in enumerate(rows):
        seconds = max(0.0, (acted - received).total_seconds()) if acted is not None else 0.0
        bars.append({"reference": reference, "seconds": round(seconds, 1), "y": i * 14,
                     "width": max(1, round(min(seconds, 3600) / 3600 * CHART_WIDTH)), "late": seconds > 3600})
    return bars


@router.get("/console/orders")
async def orders_page(request: Request, user: Reader) -> Response:
    ctx = context(request)
    now = ctx.clock.now()
    orders = await run_in_threadpool(received_orders, ctx.db, now)
    for order in orders:
        order["clock"] = clock_label(order["seconds_left"]) if order["seconds_left"] is not None else ""
    bars = await run_in_threadpool(receipt_to_action, ctx.db)
    return page(request, "orders.html", user, orders=orders, bars=bars, chart_width=CHART_WIDTH, when=when,
                 chart_height=max(14, len(bars) * 14), now=now.isoformat(),
                 waiting=sum(1 for o in orders if o["state"] == "received"),
                 overdue=sum(1 for o in orders if o["overdue"] and o["state"] == "received"))


# --- one order, and acting on it ----------------------------------------------------------------------------------


def _contact_point(request: Request) -> ContactPoint:
    cp = request.app.state.contact_point
    assert isinstance(cp, ContactPoint)
    return cp


@router.get("/console/orders/{reference}")
async def order_page(request: Request, reference: str, user: Reader) -> Response:
    return await _order_page(request, user, reference, {}, {})


async def _order_page(request: Request, user: SessionUser, reference: str, values: dict[str, str],
                      errors: dict[str, str], *, status_code: int = 200) -> Response:
    cp = _contact_point(request)
    order = await run_in_threadpool(services.get_order, cp, reference)  # no such order: ConsoleRoute's 404 page
    if order["seconds_left"] is not None:
        order["clock"] = clock_label(order["seconds_left"])
    may_act = user.principal.role in roles.ORDERS_ACT and order["kind"] == "removal_order" \
        and order["state"] == OrderState.RECEIVED
    return page(request, "order.html", user, status_code=status_code, order=order, now=cp.clock.now().isoformat(),
                 may_act=may_act, reasons=INABILITY_LABELS, values=values, errors=errors, when=when)


@router.post("/console/orders/{reference}/execute")
async def execute(request: Request, reference: str, user: Actor) -> Response:
    """Remove (or disable) the order's content now and send the Annex II feedback."""
    form = await request.form(max_files=0, max_fields=5)
    check_csrf(user, str(form.get("csrf_token") or ""))
    cp = _contact_point(request)
    state = await run_in_threadpool(lambda: services.execute(cp, reference, actor=user.principal.actor))
    response = RedirectResponse(f"/console/orders/{reference}", status_code=303)
    if state == OrderState.EXECUTED:
        flash(response, request, "ok", f"Order {reference} executed; the Annex II feedback is on its way.")
    elif state == OrderState.UNABLE:
        flash(response, request, "error", f"No content matches order {reference}: an Annex III (insufficient "
                                          "information) was sent instead, and the hour waits for a clarification.")
    else:
        flash(response, request, "error", f"Order {reference} is {state}; nothing was done.")
    return response


@router.post("/console/orders/{reference}/inability")
async def inability(request: Request, reference: str, user: Actor) -> Response:
    """Answer with Annex III: the order cannot be executed, for one of its three reasons, explained."""
    form = await request.form(max_files=0, max_fields=5)
    check_csrf(user, str(form.get("csrf_token") or ""))
    values = {"reason": str(form.get("reason") or ""), "explanation": str(form.get("explanation") or "").strip()}
    errors = {}
    if values["reason"] not in {r.value for r in InabilityReason}:
        errors["reason"] = "Reason: choose why the order cannot be executed."
    if not 1 <= len(values["explanation"]) <= 5000:
        errors["explanation"] = "Explanation: say what stops you, up to 5,000 characters; the authority reads it."
    if errors:
        return await _order_page(request, user, reference, values, errors, status_code=422)
    cp = _contact_point(request)
    try:
        await run_in_threadpool(lambda: services.declare_inability(
            cp, reference, InabilityReason(values["reason"]), values["explanation"], actor=user.principal.actor))
    except OrderError as exc:
        return await _order_page(request, user, reference, values, {"": str(exc)}, status_code=exc.status)
    response = RedirectResponse(f"/console/orders/{reference}", status_code=303)
    flash(response, request, "ok", f"Annex III sent for order {reference}; the hour waits for the authority's "
                                   "clarification.")
    return response
