"""Provenance end to end: a hash fetched from an exchange matches an upload, and the review console's case file and
the child-safety report name the exchange and its record; a moderator's decision becomes the exchange's feedback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.core.outbox.services import Routes, deliver_due
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind
from bastion.exchanges.services import ExchangeMessage
from bastion.exchanges.tasks import FeedbackSender
from bastion.hashing.services import hash_path
from bastion.matching import services as banks
from bastion.moderation import casefile, decisions
from bastion.reporting import services as reports
from tests.factories.exchanges import (
    NCMEC_PASSWORD,
    NCMEC_USER,
    TE_GROUP,
    TE_TOKEN,
    FakeNcmec,
    FakeThreatExchange,
    NcmecEntry,
)
from tests.factories.media import make_image
from tests.factories.ncmec import FakeNcmec as FakeCybertipline
from tests.factories.ncmec import fake_ncmec as fake_ncmec
from tests.reporting.conftest import SPECIALIST, World, make_settings, make_world

MODERATOR = Principal("token", 9, "moderator", Role.MODERATOR)


@pytest.fixture
def world(db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeCybertipline) -> Iterator[World]:
    yield make_world(db, tmp_path, make_settings(database_url, fake_ncmec.url))


def pdq_of(path: Path) -> str:
    return next(s.value for s in hash_path(path).signals if s.signal_type == "pdq")


def test_a_child_safety_report_names_the_exchange_and_record(world: World, admin: Principal,
                                                             ncmec_hashes: FakeNcmec, tmp_path: Path) -> None:
    import time

    db = world.mod.db
    image = make_image(tmp_path / "shared.jpg", seed=1)
    ncmec_hashes.entries.append(NcmecEntry("77", 42, int(time.time()) - 600, {"pdq": pdq_of(image)}))
    banks.create_bank(db, "CSAM_NCMEC", actor=admin, restricted=True)
    services.add_exchange(db, services.NewExchange("ncmec", ExchangeKind.NCMEC, "CSAM_NCMEC",
                                                   settings={"base_url": ncmec_hashes.url}, credentials_env="NC"),
                          actor=admin)
    assert services.fetch(db, "ncmec", actor=SPECIALIST, env={"NC": f"{NCMEC_USER}:{NCMEC_PASSWORD}"}).added == 1
    world.mod.matcher.refresh()
    world._submit("k-1", "acct-a", seed=1)
    [report_id] = reports.draft_pending(world.rep)
    with db.read() as session:
        view = reports.report_view(session, reports.get_report(session, report_id))
    [file] = view["files"]
    [known] = file["known_from"]
    assert known.startswith("CSAM_NCMEC entry ") and known.endswith(" from ncmec record 42-77")
    assert file["classification"] == "A1"  # the category csam-A1 NCMEC's classification gave the entry


def test_the_case_file_names_the_exchange_and_record_of_a_match(world: World, admin: Principal,
                                                                threatexchange: FakeThreatExchange,
                                                                tmp_path: Path) -> None:
    db = world.mod.db
    image = make_image(tmp_path / "shared.jpg", seed=5)
    threatexchange.put(11, pdq_of(image), time=1_760_000_000, tags=("spam_campaign",))
    banks.create_bank(db, "SHARED", actor=admin)
    services.add_exchange(db, services.NewExchange(
        "te", ExchangeKind.THREATEXCHANGE, "SHARED",
        settings={"privacy_group": TE_GROUP, "base_url": threatexchange.url}, credentials_env="TE"), actor=admin)
    assert services.fetch(db, "te", actor=admin, env={"TE": TE_TOKEN}).added == 1
    world.mod.matcher.refresh()
    world._submit("c-1", "acct-b", seed=5)  # a match no rule handles: held for review
    case = decisions.claim_next(world.mod, "general", MODERATOR)
    assert case is not None
    with db.read() as session:
        file = casefile.load(world.mod, session, case.id, MODERATOR)
    [match] = file.matches
    assert match["bank"] == "SHARED" and match["origin"] == f"te record HASH_PDQ:{pdq_of(image)}"

    # The moderator finds no violation: the exchange hears its record was a false positive, once.
    decisions.decide(world.mod, case.id, decisions.ReviewDecision(False, []), reviewer=MODERATOR)
    assert services.feedback_from_decisions(db, world.clock) == 1
    assert services.feedback_from_decisions(db, world.clock) == 0  # the cursor moved with the messages
    report = deliver_due(db, Routes(dict.fromkeys(ExchangeMessage, FeedbackSender(db, {"TE": TE_TOKEN}))),
                         clock=world.clock)
    assert report.delivered == 1 and threatexchange.reactions == [("110", "NOT_HELPFUL")]
