"""The contact point's errors, states, event kinds and its escalation notifier interface."""

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


class OrderState(enum.StrEnum):
    """Where a received order stands. Values are storage keys: never rename."""

    RECEIVED = "received"  # the one-hour clock runs
    EXECUTED = "executed"  # removed or disabled; Annex II sent
    UNABLE = "unable"  # Annex III sent; the clock waits for a clarification
    REINSTATED = "reinstated"  # scrutiny found an infringement; the content is back
    REFERRED = "referred"  # a voluntary referral, waiting to be put to moderators
    REFERRAL_IN_REVIEW = "referral_in_review"


class OrderEventKind(enum.StrEnum):
    """Values are storage keys: never rename; retire a value by keeping it reserved here."""

    RECEIVED = "order.received"
    REPEATED = "order.repeated"  # the same order again (a retry): same answer
    EXECUTED = "order.executed"
    UNABLE = "order.unable"
    CLARIFIED = "order.clarified"
    ESCALATED = "order.escalated"
    OVERDUE = "order.overdue"
    REINSTATED = "order.reinstated"
    REFERRAL_RECEIVED = "referral.received"
    REFERRAL_IN_REVIEW = "referral.in_review"
    PRESERVED = "order.preserved"  # removed content sealed and kept (Art. 6)
    PRESERVATION_EXTENDED = "order.preservation_extended"
    PURGED = "order.purged"
    NOT_PRESERVED = "order.not_preserved"  # no media key configured: nothing could be kept sealed
    PROVIDER_INFORMED = "order.content_provider_informed"  # Art. 11: reasons and redress sent to the uploader
    THREAT_REPORTED = "threat.reported"  # Art. 14(5): reference is "threat:<content id>"


class Notifier(Protocol):
    """Tells the people on duty that an order's hour is running out. Writes in the caller's transaction."""

    def escalate(self, session: Session, order: ReceivedOrder, minutes: int, *, overdue: bool) -> None: ...
