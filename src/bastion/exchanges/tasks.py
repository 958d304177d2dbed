"""Background work: the scheduled fetches (a ``Worker`` round) and the delivery of feedback from the outbox."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from sqlalchemy import select

from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.outbox.delivery import Claim, SendResult, is_permanent_status
from bastion.core.worker import Worker
from bastion.exchanges import clients, services
from bastion.exchanges.interfaces import ExchangeError, FetchFailed
from bastion.exchanges.models import Exchange

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
        try:
            self.client_factory(config, credentials).send_feedback(services.feedback_target(claim.payload))
        except FetchFailed as exc:
            if is_permanent_status(exc.http_status):
                return SendResult.give_up(str(exc), exc.http_status)
            return SendResult.retry(str(exc), exc.http_status)
        except ExchangeError as exc:
            return SendResult.retry(str(exc))
        return SendResult.delivered()
