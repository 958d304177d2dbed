"""Console page of the contact point: every removal order with its one-hour clock, and how fast orders were done.

The clock is rendered by the server (time left when the page was made) and kept live by ``static/orders.js`` from
each row's deadline; the chart of receipt-to-action times is an SVG drawn here, so nothing is fetched from outside.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import SessionUser
from bastion.core.context import context
from bastion.core.db import Database
from bastion.orders.models import ReceivedOrder
from bastion.orders.services import received_orders
from bastion.web.console import ConsoleRoute, page, role_required

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Reader = Annotated[SessionUser, Depends(role_required(roles.ORDERS_READ))]
#: Bars in the chart: the most recent executed orders.
CHART_ORDERS = 40
CHART_WIDTH = 600


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
    return page(request, "orders.html", user, orders=orders, bars=bars, chart_width=CHART_WIDTH,
                 chart_height=max(14, len(bars) * 14), now=now.isoformat(),
                 waiting=sum(1 for o in orders if o["state"] == "received"),
                 overdue=sum(1 for o in orders if o["overdue"] and o["state"] == "received"))
