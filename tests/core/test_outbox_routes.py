"""``Routes``: one outbox, each declared kind delivered by its own sender; kinds nobody declared or routes refused."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox.kinds import MessageKind, Routes, UnknownKind
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import Claim, OutboxWorker, SendResult, deliver_due, enqueue

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


class Notice(MessageKind):
    ACTION = "moderation.action"
    REPORTISH = "reportish"


class Report(MessageKind):
    NCMEC = "report.ncmec"
    EU_CENTRE = "report.eu_centre"


@dataclass
class Recording:
    name: str
    seen: list[str] = field(default_factory=list)

    def send(self, claim: Claim) -> SendResult:
        self.seen.append(claim.kind)
        return SendResult.delivered()


def _queue(db: Database, clock: FrozenClock, kinds: list[MessageKind]) -> None:
    with db.write() as session:
        for i, kind in enumerate(kinds):
            enqueue(session, kind=kind, destination="http://127.0.0.1:9/", payload={}, idempotency_key=f"k{i}",
                    clock=clock)


def test_claims_go_to_the_sender_of_their_kind(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, [Notice.ACTION, Report.NCMEC, Report.EU_CENTRE, Notice.REPORTISH])
    default, reports = Recording("default"), Recording("reports")
    routes = Routes({**dict.fromkeys(Notice, default), **dict.fromkeys(Report, reports)})
    assert deliver_due(db, routes, clock=clock).delivered == 4
    assert reports.seen == ["report.ncmec", "report.eu_centre"]
    assert default.seen == ["moderation.action", "reportish"]  # "reportish" is not a report: no prefix matching


def test_a_kind_family_with_a_member_left_unrouted_is_refused_at_construction() -> None:
    with pytest.raises(UnknownKind, match=r"report\.eu_centre"):
        Routes({Notice.ACTION: Recording("a"), Notice.REPORTISH: Recording("a"), Report.NCMEC: Recording("b")})


def test_a_route_for_an_undeclared_string_is_refused_at_construction() -> None:
    with pytest.raises(UnknownKind, match="not a declared"):
        Routes({"report.ncmec": Recording("a")})  # type: ignore[dict-item]


def test_enqueue_refuses_a_loose_string_and_writes_nothing(db: Database) -> None:
    with pytest.raises(UnknownKind), db.write() as session:
        enqueue(session, kind="moderation.action", destination="http://127.0.0.1:9/",  # type: ignore[arg-type]
                payload={}, idempotency_key="k", clock=FrozenClock(NOW))
    with db.read() as session:
        assert session.scalars(select(OutboxMessage)).all() == []


def test_the_outbox_does_not_start_over_messages_of_kinds_nobody_here_delivers(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, [Report.NCMEC])
    worker = OutboxWorker(db, Routes(dict.fromkeys(Notice, Recording("notices"))), clock=clock)
    with pytest.raises(UnknownKind, match=r"report\.ncmec"):
        worker.start()
    assert not worker.running


def test_a_claim_of_a_kind_with_no_route_dies_with_the_reason_rather_than_going_anywhere(db: Database) -> None:
    clock = FrozenClock(NOW)
    _queue(db, clock, [Report.NCMEC])
    notices = Recording("notices")
    assert deliver_due(db, Routes(dict.fromkeys(Notice, notices)), clock=clock).dead == 1
    assert notices.seen == []
    with db.read() as session:
        assert "no sender here" in session.scalars(select(OutboxMessage.last_error)).one()
