"""The sender's edge cases against the fake NCMEC on loopback: giving up, fencing, response codes, destinations."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import select

from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.models import DeliveryState as OutboxState
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import RetryPolicy, Routes, claim_due, deliver_due
from bastion.reporting import ncmec, services
from bastion.reporting.events import ReportEventKind
from bastion.reporting.interfaces import CentreName, DestinationRefused
from bastion.reporting.models import ReportedFile
from bastion.reporting.ncmec import CodeOutcome
from bastion.reporting.services import Reporting
from bastion.reporting.tasks import ReportSender
from tests.factories.ncmec import FakeNcmec
from tests.reporting.conftest import NO_JITTER, SPECIALIST, World, make_settings, make_world


def _view(world: World, report_id: str) -> dict[str, object]:
    with world.rep.db.read() as session:
        return services.report_view(session, services.get_report(session, report_id))


def _ncmec(world: World, report_id: str) -> dict[str, str]:
    centres = _view(world, report_id)["centres"]
    assert isinstance(centres, dict)
    return dict(centres["ncmec"])


def _sent(world: World, content_ids: list[str]) -> str:
    """Draft, supply every file's bytes, send; returns the report id."""
    (report_id,) = services.draft_pending(world.rep)
    for content_id in content_ids:
        services.supply_material(world.rep, report_id, content_id, world.files[content_id].read_bytes(),
                                 f"{content_id}.jpg")
    services.send(world.rep, report_id, actor=SPECIALIST)
    return report_id


def _outbox(world: World) -> list[OutboxMessage]:
    with world.rep.db.read() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_delivery_whose_message_runs_out_of_attempts_is_failed_and_can_be_resent(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    fake_ncmec.fail_next("/submit", 1000, times=NO_JITTER.max_attempts)
    for _ in range(NO_JITTER.max_attempts - 1):
        assert world.deliver().retrying == 1
        assert _view(world, report_id)["state"] == "queued"
        world.clock.advance(seconds=60)
    assert world.deliver().dead == 1
    view = _view(world, report_id)
    assert view["state"] == "failed" and "gave up after 5 attempts" in _ncmec(world, report_id)["error"]
    services.resend(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1 and _view(world, report_id)["state"] == "finished"


def test_the_outbox_alone_decides_when_to_give_up_and_the_delivery_hears_it(
        world: World, fake_ncmec: FakeNcmec) -> None:
    """The sender keeps no attempt count: an outbox with its own limit (2 here), routing by kind as the app's does,
    fails the delivery when it gives up, with its reason, and only then."""
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    fake_ncmec.fail_next("/submit", 1000, times=2)
    policy = RetryPolicy(base_seconds=2.0, jitter=0.0, max_attempts=2)
    routed = Routes(dict.fromkeys(services.ReportMessage, world.sender))
    assert deliver_due(world.rep.db, routed, clock=world.clock, policy=policy).retrying == 1
    assert _view(world, report_id)["state"] == "queued"
    world.clock.advance(seconds=60)
    assert deliver_due(world.rep.db, routed, clock=world.clock, policy=policy).dead == 1
    assert _view(world, report_id)["state"] == "failed"
    assert "gave up after 2 attempts" in _ncmec(world, report_id)["error"]
    with world.rep.db.read() as session:
        kinds = [e.kind for e in services.report_history(session, report_id)]
    assert kinds[-1] == ReportEventKind.FAILED and kinds.count(ReportEventKind.FAILED) == 1


def test_material_that_does_not_open_fails_the_delivery_at_once(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    with world.rep.db.write() as session:
        session.scalars(select(ReportedFile)).one().sealed = b"not a sealed blob at all"
    assert world.deliver().dead == 1  # not retried: no retry opens it
    assert _view(world, report_id)["state"] == "failed"
    assert "SealError" in _ncmec(world, report_id)["error"]
    assert fake_ncmec.count("/upload") == 0 and fake_ncmec.count("/finish") == 0


def test_a_file_whose_bytes_went_missing_after_sending_fails_instead_of_being_skipped(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    with world.rep.db.write() as session:
        session.scalars(select(ReportedFile)).one().sealed = None
    assert world.deliver().dead == 1
    assert _view(world, report_id)["state"] == "failed"
    assert "no longer held" in _ncmec(world, report_id)["error"]
    assert fake_ncmec.count("/finish") == 0


def test_a_deliverer_whose_lease_was_taken_over_makes_no_further_call(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    (stale,) = claim_due(world.rep.db, limit=1, lease_seconds=300, clock=world.clock)
    world.clock.advance(seconds=301)  # the first deliverer stalled past its lease; a second one takes over
    (fresh,) = claim_due(world.rep.db, limit=1, lease_seconds=300, clock=world.clock)
    result = world.sender.send(stale)
    assert not result.ok and fake_ncmec.calls == []
    assert world.sender.send(fresh).ok
    assert fake_ncmec.count("/submit") == 1 and _view(world, report_id)["state"] == "finished"


def test_a_failed_retract_can_be_asked_again(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    world.deliver()
    fake_ncmec.fail_next("/retract", 4000)
    services.retract(world.rep, report_id, actor=SPECIALIST)
    services.retract(world.rep, report_id, actor=SPECIALIST)  # a double click: still one retract on its way
    assert world.deliver().dead == 1
    assert "4000" in _ncmec(world, report_id)["error"]
    services.retract(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    assert _view(world, report_id)["state"] == "retracted" and fake_ncmec.count("/retract") == 2


def test_a_file_ncmec_lost_before_its_details_is_uploaded_again_alone(world: World, fake_ncmec: FakeNcmec) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    world.confirmed("c-2", "acct-b", seed=3)
    report_id = _sent(world, ["c-1", "c-2"])
    fake_ncmec.fail_next("/fileinfo", 5002)
    assert world.deliver().retrying == 1
    assert "uploading the file again" in _ncmec(world, report_id)["error"]
    world.clock.advance(seconds=3)
    assert world.deliver().delivered == 1
    assert fake_ncmec.count("/submit") == 1 and fake_ncmec.count("/upload") == 3
    assert _view(world, report_id)["state"] == "finished"


def test_a_report_retracted_at_ncmec_during_sending_is_retracted(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    fake_ncmec.fail_next("/finish", 5101)
    assert world.deliver().delivered == 1
    assert _view(world, report_id)["state"] == "retracted"


def test_an_md5_mismatch_stops_for_a_person_instead_of_uploading_in_a_loop(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    fake_ncmec.wrong_md5 = 1
    assert world.deliver().dead == 1
    assert _view(world, report_id)["state"] == "failed" and "MD5" in _ncmec(world, report_id)["error"]
    world.clock.advance(hours=1)
    assert world.deliver().claimed == 0 and fake_ncmec.count("/upload") == 1


@pytest.mark.parametrize("status, outcome", [
    (408, CodeOutcome.RETRY), (429, CodeOutcome.RETRY), (503, CodeOutcome.RETRY), (400, CodeOutcome.REJECTED)])
def test_unreadable_answers_retry_when_the_status_says_later(status: int, outcome: CodeOutcome) -> None:
    answer = ncmec.parse_answer(httpx.Response(status, content=b"<html>busy</html"))
    assert answer.outcome is outcome


@pytest.mark.parametrize("url, production, allowed", [
    ("https://exttest.cybertip.org/ispws", False, True),
    ("https://report.cybertip.org/ispws", False, False),
    ("https://REPORT.cybertip.org:443/ispws", False, False),
    ("https://report.cybertip.org/ispws", True, True),
    ("http://exttest.cybertip.org/ispws", False, False),
    ("http://127.0.0.1:8123/ispws", False, True),
    ("http://localhost:8123/ispws", False, True),
    ("ftp://127.0.0.1/ispws", False, False)])
def test_reports_go_to_production_only_when_switched_on_and_over_https(
        url: str, production: bool, allowed: bool) -> None:
    if allowed:
        assert ncmec.check_url(url, production=production) == url
    else:
        with pytest.raises(DestinationRefused):
            ncmec.check_url(url, production=production)


def test_a_production_url_without_the_switch_is_refused_and_nothing_is_queued(
        db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> None:
    world = make_world(db, tmp_path, make_settings(database_url, ncmec.PRODUCTION_URL))
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    with pytest.raises(DestinationRefused, match="BASTION_NCMEC_PRODUCTION"):
        services.send(world.rep, report_id, actor=SPECIALIST)
    assert _view(world, report_id)["state"] == "draft" and _outbox(world) == []


def test_the_sender_uses_the_claims_destination_and_fails_one_it_may_not_use(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    _sent(world, ["k-1"])
    moved = Reporting(world.rep.db, world.clock, world.rep.sealer,
                      replace(world.rep.settings, ncmec_url="http://127.0.0.1:9/ispws"))
    world.sender = ReportSender(moved)  # the configuration changed after queueing
    assert world.deliver().delivered == 1 and fake_ncmec.count("/submit") == 1  # where it was queued to
    world.known("k-2", "acct-b", seed=2)
    other = _sent(world, ["k-2"])
    with world.rep.db.write() as session:
        message = session.scalars(select(OutboxMessage).where(OutboxMessage.state == OutboxState.PENDING.value)).one()
        message.destination = ncmec.PRODUCTION_URL  # tampered with, or queued before the switch went off
    assert world.deliver().dead == 1
    assert "BASTION_NCMEC_PRODUCTION" in _ncmec(world, other)["error"] and fake_ncmec.count("/submit") == 1


def test_no_eu_centre_any_more_fails_its_delivery_instead_of_crashing_the_sender(
        db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> None:
    world = make_world(db, tmp_path, make_settings(database_url, fake_ncmec.url,
                                                   eu_centre_url="http://127.0.0.1:9/v1/centre/reports"))
    world.known("k-1", "acct-a", seed=1)
    report_id = _sent(world, ["k-1"])
    gone = Reporting(db, world.clock, world.rep.sealer, replace(world.rep.settings, eu_centre_url=None))
    world.sender = ReportSender(gone)
    assert world.deliver().delivered == 1
    view = _view(world, report_id)
    assert view["state"] == "finished"
    centres = view["centres"]
    assert isinstance(centres, dict)
    assert centres[CentreName.EU_CENTRE.value]["state"] == "failed"
    assert "BASTION_EU_CENTRE_URL" in centres[CentreName.EU_CENTRE.value]["error"]


def test_each_file_says_whether_the_platform_viewed_it(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)  # blocked by a known hash: nobody looked at it
    world.confirmed("c-1", "acct-a", seed=2)  # a specialist confirmed it: viewed
    report_id = _sent(world, ["k-1", "c-1"])
    assert world.deliver().delivered == 1
    ((_, received),) = fake_ncmec.reports.items()
    viewed = {f["md5"]: etree.fromstring(f["details"]).findtext("fileViewedByEsp") for f in received.files.values()}
    md5 = {c: hashlib.md5(world.files[c].read_bytes()).hexdigest() for c in ("k-1", "c-1")}
    assert viewed == {md5["k-1"]: "false", md5["c-1"]: "true"}
    with world.rep.db.read() as session:
        body = services.eu_centre_document(session, world.rep, services.get_report(session, report_id))
    assert {c["content_id"]: c["material_kind"] for c in body["content"]} == {"k-1": "known", "c-1": "new"}
    assert body["material_kind"] == "new"


def test_the_drafting_round_interval_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_REPORTS_TICK_SECONDS", "7.5")
    assert Settings.from_env().reports_tick_seconds == 7.5
    monkeypatch.delenv("BASTION_REPORTS_TICK_SECONDS")
    assert Settings.from_env().reports_tick_seconds == 30.0
    for bad in ("soon", "0", "-3", "nan"):
        monkeypatch.setenv("BASTION_REPORTS_TICK_SECONDS", bad)
        with pytest.raises(SystemExit, match="BASTION_REPORTS_TICK_SECONDS"):
            Settings.from_env()
