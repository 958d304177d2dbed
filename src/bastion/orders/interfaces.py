"""The contact point's errors, sender roles and its escalation notifier interface (states and event kinds:
``orders/events.py``)."""

from __future__ import annotations

import enum
from typing import Protocol

from sqlalchemy.orm import Session

from bastion.core.errors import DomainError
from bastion.orders.models import ReceivedOrder


class OrderError(DomainError):
    status = 400
    title = "Bad request"


class OrderNotFound(OrderError):
    status = 404
    title = "Order not found"


class OrderConflict(OrderError):
    """The same reference with a different body, or a step the order's state does not allow."""

    status = 409
    title = "Conflict"


class InvalidOrderRequest(OrderError):
    status = 422
    title = "Invalid request"


class NoAuthority(OrderError):
    """Nowhere to send an Art. 14(5) report: no authority registered for the State, and no Europol contact."""

    status = 409
    title = "No competent authority"


class SenderRole(enum.StrEnum):
    HUB = "hub"
    AUTHORITY = "authority"


class Notifier(Protocol):
    """Tells the people on duty that an order's hour is running out. Writes in the caller's transaction."""

    def escalate(self, session: Session, order: ReceivedOrder, minutes: int, *, overdue: bool) -> None: ...
