"""``SenderByKind``: one outbox, each kind prefix delivered by its own sender, the rest by the default one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from bastion.core.clock import FrozenClock
from bastion.core.db import Database
from bastion.core.outbox.services import Claim, SenderByKind, SendResult, deliver_due, enqueue

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


@dataclass
class Recording:
    name: str
    seen: list[str] = field(default_factory=list)

    def send(self, claim: Claim) -> SendResult:
        self.seen.append(claim.kind)
        return SendResult.delivered()


def test_claims_go_to_the_sender_of_their_kind_prefix(db: Database) -> None:
    clock = FrozenClock(NOW)
    with db.write() as session:
        for i, kind in enumerate(["moderation.action", "report.ncmec", "report.eu_centre", "reportish"]):
            enqueue(session, kind=kind, destination="http://127.0.0.1:9/", payload={}, idempotency_key=f"k{i}",
                    clock=clock)
    default, reports = Recording("default"), Recording("reports")
    assert deliver_due(db, SenderByKind(default, {"report.": reports}), clock=clock).delivered == 4
    assert reports.seen == ["report.ncmec", "report.eu_centre"]
    assert default.seen == ["moderation.action", "reportish"]


def test_a_prefix_that_shadows_another_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="shadowed"):
        SenderByKind(Recording("d"), {"report.": Recording("a"), "report.ncmec": Recording("b")})
