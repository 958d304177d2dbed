"""What every minors use case needs (the database, the clock, the rules in force, the platform's webhook), and the
small helpers they share. The use cases live beside it: ``ages``, ``interactions``, ``accounts``, ``family``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy.orm import Session

from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.events import record
from bastion.core.outbox.services import enqueue
from bastion.minors.events import MESSAGE_FOR, EventKind
from bastion.minors.interfaces import EnticementReporter
from bastion.minors.models import MinorEvent
from bastion.minors.rules import RuleSet, RulesFile


@dataclass
class Minors:
    db: Database
    clock: Clock
    rules_file: RulesFile
    #: The platform's webhook (``BASTION_PLATFORM_WEBHOOK_URL``); events only when unset.
    webhook_url: str | None = None
    #: Drafts the NCMEC report of a confirmed grooming case (``web/app.py`` wires reporting's); None: none here.
    enticement: EnticementReporter | None = None
    #: Queues an issued statement of reasons for the DSA Transparency Database in the caller's transaction (the
    #: same hook as ``Moderation.on_statement``: ``web/app.py`` wires transparency's); None: not submitted here.
    on_statement: Callable[[Session, str], None] | None = None

    @property
    def rules(self) -> RuleSet:
        return self.rules_file.rules


#: The prefix of an account's subject in the event log.
ACCOUNT_PREFIX = "account:"


def account_subject(account_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def log(m: Minors, session: Session, account_id: str, kind: EventKind, actor: str, data: BaseModel,
        at: dt.datetime | None = None) -> MinorEvent:
    return record(session, MinorEvent, subject=account_subject(account_id), kind=kind, actor=actor,
                  at=at or m.clock.now(), data=data)


def notify(m: Minors, session: Session, kind: EventKind, key: str, body: dict[str, object]) -> None:
    """Tell the platform through the outbox (a signed webhook), in the transaction of the change it reports."""
    if m.webhook_url is None:
        return
    enqueue(session, kind=MESSAGE_FOR[kind], destination=m.webhook_url, payload={"kind": kind.value, **body},
            idempotency_key=f"minors:{key}"[:200], clock=m.clock)
