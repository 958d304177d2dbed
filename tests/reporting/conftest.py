"""A platform with confirmed child-abuse material to report: real moderation, real banks, a fake NCMEC on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.services import DeliveryReport, RetryPolicy, deliver_due
from bastion.hashing.services import hash_path
from bastion.matching import services as banks
from bastion.matching.matcher import Matcher
from bastion.moderation import decisions, intake, notices
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import DEFAULT_POLICY_PATH, Action, Category, ContentType, PolicyFile
from bastion.reporting.services import Reporting
from bastion.reporting.tasks import ReportSender
from tests.factories.media import make_image
from tests.factories.ncmec import PASSWORD, USERNAME, XSD, FakeNcmec
from tests.factories.ncmec import fake_ncmec as fake_ncmec

NOW = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)
SPECIALIST = Principal("token", 7, "cs-specialist", Role.CHILD_SAFETY)
MODERATOR = Principal("token", 9, "moderator", Role.MODERATOR)
PLATFORM = Principal("token", 8, "platform", Role.PLATFORM)
NO_JITTER = RetryPolicy(base_seconds=2.0, jitter=0.0, max_attempts=5)


@dataclass
class World:
    """The platform's side: moderation decides, reporting drafts and sends, the fake NCMEC receives."""

    mod: Moderation
    rep: Reporting
    clock: FrozenClock
    tmp: Path
    sender: ReportSender
    files: dict[str, Path] = field(default_factory=dict)

    def _submit(self, content_id: str, account_id: str, seed: int, url: str = "", file_name: str = "") -> Path:
        image = make_image(self.tmp / f"{content_id}.jpg", seed=seed)
        self.files[content_id] = image
        intake.submit(self.mod, intake.Submission(content_id, account_id, 31, "DE", ContentType.IMAGE,
                                                          url=url, file_name=file_name),
                          hash_path(image), actor=PLATFORM)
        return image

    def known(self, content_id: str, account_id: str, seed: int, category: str = "csam-A1") -> Path:
        """An upload blocked by a match in the restricted bank of known material."""
        image = make_image(self.tmp / f"{content_id}.jpg", seed=seed)
        pdq = next(s.value for s in hash_path(image).signals if s.signal_type == "pdq")
        with contextlib.suppress(banks.BankExists):
            banks.create_bank(self.mod.db, "CSAM_KNOWN", actor=SPECIALIST, restricted=True, clock=self.clock)
        with contextlib.suppress(banks.DuplicateEntry):
            banks.add_entry(self.mod.db, "CSAM_KNOWN", banks.NewEntry.parse("pdq", pdq, category),
                            actor=SPECIALIST, clock=self.clock)
        self.mod.matcher.refresh()
        return self._submit(content_id, account_id, seed)

    def confirmed(self, content_id: str, account_id: str, seed: int, url: str = "", file_name: str = "") -> Path:
        """An upload reported by a user and confirmed as CSAM by a child-safety specialist."""
        image = self._submit(content_id, account_id, seed, url, file_name)
        case_id = notices.record_notice(self.mod, content_id, category=Category.CSAM, explanation="report",
                                           trusted_flagger=False, notifier="user-1", actor=PLATFORM)
        case = decisions.claim_next(self.mod, "child_safety", SPECIALIST)
        assert case is not None and case.id == case_id
        decisions.decide(self.mod, case_id, decisions.ReviewDecision(True, [Action.REMOVE], Category.CSAM),
                          reviewer=SPECIALIST)
        return image

    def deliver(self) -> DeliveryReport:
        return deliver_due(self.mod.db, self.sender, clock=self.clock, policy=NO_JITTER)


def make_settings(database_url: str, ncmec_url: str, **extra: object) -> Settings:
    from bastion.core.sealing import new_key

    base: dict[str, object] = {
        "database_url": database_url, "media_key": new_key(), "ncmec_url": ncmec_url, "ncmec_username": USERNAME,
        "ncmec_password": PASSWORD, "ncmec_xsd": XSD, "orders_provider": "Example Video Platform",
    }
    return Settings(**{**base, **extra})  # type: ignore[arg-type]


def make_world(db: Database, tmp: Path, settings: Settings) -> World:
    clock = FrozenClock(NOW)
    matcher = Matcher(db)
    matcher.load()
    mod = Moderation(db, matcher, PolicyFile(DEFAULT_POLICY_PATH), clock)
    rep = Reporting(db, clock, settings.media_sealer(), settings)
    return World(mod, rep, clock, tmp, ReportSender(rep))


@pytest.fixture
def world(db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> Iterator[World]:
    yield make_world(db, tmp_path, make_settings(database_url, fake_ncmec.url))
