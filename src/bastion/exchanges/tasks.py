"""Background work: the scheduled fetches (a ``Worker`` round) and the delivery of feedback and shared hashes from
the outbox."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.outbox.delivery import Claim, SendResult, is_permanent_status
from bastion.core.outbox.kinds import Sender
from bastion.core.worker import Worker
from bastion.exchanges import clients, services
from bastion.exchanges.interfaces import RESTRICTED_KINDS, ContributionOutcome, ExchangeError, ExchangeKind, FetchFailed
from bastion.exchanges.models import Exchange
from bastion.matching.matcher import restricted_category
from bastion.matching.models import Bank, BankEntry
from bastion.matching.services import value_digest

#: How often the scheduler looks for exchanges due a fetch; each has its own interval.
SCHEDULE_TICK_SECONDS = 60.0


def scheduler(db: Database, clock: Clock, env: Mapping[str, str] | None = None,
              interval: float = SCHEDULE_TICK_SECONDS) -> Worker:
    """The worker that fetches each enabled exchange when its interval has passed (nothing without pytx)."""
    return Worker(lambda: services.tick(db, clock, env), interval, "bastion-exchanges")


class FeedbackSender:
    """Delivers ``exchange.feedback``: the opinion posted with the exchange's own client. An exchange's 4xx (other
    than 408/425/429) gives up; anything else is retried by the outbox."""

    def __init__(self, db: Database, env: Mapping[str, str] | None = None,
                 client_factory: Callable[[clients.Config, str], clients.ExchangeClient] = clients.client_for) -> None:
        self.db = db
        self.env = env
        self.client_factory = client_factory

    def __repr__(self) -> str:
        return "FeedbackSender()"

    def send(self, claim: Claim) -> SendResult:
        name = str(claim.payload.get("exchange", ""))
        with self.db.read() as session:
            exchange = session.scalar(select(Exchange).where(Exchange.name == name))
            if exchange is None:
                return SendResult.give_up(f"exchange {name!r} no longer exists")
            config = services.config_of(exchange)
            try:
                credentials = services.credentials_of(exchange, os.environ if self.env is None else self.env)
            except ExchangeError as exc:
                return SendResult.retry(str(exc))
        failed = _attempt(lambda: self.client_factory(config, credentials).send_feedback(
            services.feedback_target(claim.payload)))
        return failed if isinstance(failed, SendResult) else SendResult.delivered()


T = TypeVar("T")


def _attempt(call: Callable[[], T]) -> T | SendResult:
    """One call to an exchange: its answer, or what its failure means for the outbox (a permanent HTTP status gives
    up; any other failure is tried again later)."""
    try:
        return call()
    except FetchFailed as exc:
        if is_permanent_status(exc.http_status):
            return SendResult.give_up(str(exc), exc.http_status)
        return SendResult.retry(str(exc), exc.http_status)
    except ExchangeError as exc:
        return SendResult.retry(str(exc))


#: Told how sharing a hash ended (``feed.crisis.record_share``, wired in ``web/app.py``).
OutcomeHook = Callable[[ContributionOutcome], None]


class ContributionSender:
    """Delivers ``exchange.contribution``: the hash shared with the exchange's own client. An exchange's 4xx (other
    than 408/425/429) is a refusal, kept; a 5xx or no answer is retried by the outbox. The outcome (the accepted
    id, or the error that ended it) is told to ``on_outcome`` once it is final.

    Fail closed at the last step too: an exchange that became a child-safety one, or stopped taking contributions,
    since the hash was queued, receives nothing. Delivery is at least once: a crash between the exchange's answer
    and its record sends the hash again (ThreatExchange then holds two descriptors of it)."""

    def __init__(self, db: Database, env: Mapping[str, str] | None = None,
                 client_factory: Callable[[clients.Config, str], clients.ExchangeClient] = clients.client_for,
                 on_outcome: OutcomeHook | None = None) -> None:
        self.db = db
        self.env = env
        self.client_factory = client_factory
        self.on_outcome = on_outcome

    def __repr__(self) -> str:
        return "ContributionSender()"

    def _tell(self, claim: Claim, accepted_id: str = "", error: str = "", status: int | None = None) -> None:
        if self.on_outcome is not None:
            p = claim.payload
            self.on_outcome(ContributionOutcome(str(p.get("subject", "")), str(p.get("exchange", "")),
                                                str(p.get("signal_type", "")), str(p.get("value", "")),
                                                claim.idempotency_key, accepted_id, error, status))

    def send(self, claim: Claim) -> SendResult:
        name = str(claim.payload.get("exchange", ""))
        with self.db.read() as session:
            exchange = session.scalar(select(Exchange).where(Exchange.name == name))
            bank = session.get(Bank, exchange.bank_id) if exchange is not None else None
            if exchange is None or bank is None:
                return SendResult.give_up(f"exchange {name!r} no longer exists")
            kind = ExchangeKind(exchange.kind)
            if bank.restricted or kind in RESTRICTED_KINDS or kind not in clients.CONTRIBUTES:
                return SendResult.give_up(f"exchange {name} takes no shared hashes")
            withheld = _withheld(session, str(claim.payload.get("signal_type", "")),
                                 str(claim.payload.get("value", "")))
            if withheld:
                return SendResult.give_up(withheld)
            try:
                config = services.config_of(exchange)
                credentials = services.credentials_of(exchange, os.environ if self.env is None else self.env)
            except ExchangeError as exc:
                return SendResult.retry(str(exc))
        accepted = _attempt(lambda: self.client_factory(config, credentials).contribute(
            services.contribution_of(claim.payload)))
        if isinstance(accepted, SendResult):
            return accepted
        self._tell(claim, accepted_id=accepted)
        return SendResult.delivered()

    def on_dead(self, claim: Claim, result: SendResult) -> None:
        self._tell(claim, error=result.error or "refused", status=result.status)


def _withheld(session: Session, signal_type: str, value: str) -> str:
    """Why a queued hash must not leave now (``""``: it may): checked again at each try, since the queue may be
    old. Never once the value is held as child sexual abuse material anywhere (a restricted bank, or a restricted
    category), nor once no open bank holds it enabled any more (the crisis bank's curators took it out)."""
    bank_ids = list(session.scalars(select(Bank.id)))
    rows = session.execute(select(Bank.restricted, BankEntry.category, BankEntry.enabled)
                           .join(Bank, Bank.id == BankEntry.bank_id)
                           .where(BankEntry.bank_id.in_(bank_ids), BankEntry.signal_type == signal_type,
                                  BankEntry.value_digest == value_digest(value))).all()
    if any(restricted or restricted_category(category) for restricted, category, _ in rows):
        return "withheld: the hash is restricted material now"
    if not any(enabled for _, _, enabled in rows):
        return "withheld: no bank holds the hash any more"
    return ""


class ExchangeSender:
    """The one sender of every ``ExchangeMessage``: feedback and shared hashes, each by its own sender."""

    def __init__(self, feedback: FeedbackSender, contributions: ContributionSender) -> None:
        self.senders: dict[str, Sender] = {services.ExchangeMessage.FEEDBACK.value: feedback,
                                           services.ExchangeMessage.CONTRIBUTION.value: contributions}
        self.contributions = contributions

    def __repr__(self) -> str:
        return "ExchangeSender()"

    def send(self, claim: Claim) -> SendResult:
        sender = self.senders.get(claim.kind)
        if sender is None:
            return SendResult.give_up(f"no exchange sender for {claim.kind}")
        return sender.send(claim)

    def on_dead(self, claim: Claim, result: SendResult) -> None:
        if claim.kind == services.ExchangeMessage.CONTRIBUTION.value:
            self.contributions.on_dead(claim, result)
