"""Drafting by account, preservation (sealed, audited openings, purge) and export."""

from __future__ import annotations

import datetime as dt
import json
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bastion.core import events as event_log
from bastion.core.audit.models import AuditEntry
from bastion.core.audit.services import verify
from bastion.core.outbox.models import OutboxMessage
from bastion.moderation import queries as moderated
from bastion.reporting import services
from bastion.reporting.events import RepeatRecorded, ReportEventKind
from bastion.reporting.interfaces import (
    InvalidReport,
    InvalidTransition,
    MaterialGone,
    MaterialMismatch,
    ReportingError,
)
from bastion.reporting.models import ChildSafetyReport, ReportedFile
from bastion.transparency import metrics
from tests.factories.ncmec import XSD, FakeNcmec
from tests.reporting.conftest import MODERATOR, SPECIALIST, World

SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))


def test_confirmed_material_is_drafted_into_one_report_per_account(world: World) -> None:
    world.known("k-1", "acct-a", seed=1)
    world.confirmed("c-1", "acct-a", seed=2)
    world.confirmed("c-2", "acct-b", seed=3)
    world._submit("fine-1", "acct-a", seed=4)  # allowed, never confirmed: not reported
    world._submit("held-1", "acct-c", seed=5)
    first = services.draft_pending(world.rep)
    assert len(first) == 2
    with world.rep.db.read() as session:
        reports = {r.account_id: services.report_view(session, r) for r in services.list_reports(session)}
    assert sorted(reports) == ["acct-a", "acct-b"]
    files = {f["content_id"]: f for f in reports["acct-a"]["files"]}
    assert sorted(files) == ["c-1", "k-1"]
    assert files["k-1"]["classification"] == "A1"  # from the bank entry's category
    assert files["c-1"]["classification"] is None  # the specialist sets it while reviewing
    assert all(r["state"] == "draft" and r["removed"] for r in reports.values())
    assert services.draft_pending(world.rep) == []  # idempotent
    world.confirmed("c-3", "acct-a", seed=6)  # more material while the draft is open: same report
    assert services.draft_pending(world.rep) == [reports["acct-a"]["id"]]
    with world.rep.db.read() as session:
        view = services.report_view(session, services.get_report(session, str(reports["acct-a"]["id"])))
    assert len(view["files"]) == 3 and view["fingerprint"] != reports["acct-a"]["fingerprint"]


def test_intimate_images_from_stopncii_are_blocked_but_not_reported_as_child_abuse(world: World) -> None:
    world.known("ncii-1", "acct-n", seed=11, category="ncii")
    world.known("k-2", "acct-k", seed=12, category="csam-A1")
    world.known("unnamed-1", "acct-u", seed=13, category="")  # a category the rule does not name: reported
    services.draft_pending(world.rep)
    with world.rep.db.read() as session:
        reported = {r.account_id for r in services.list_reports(session)}
        assert moderated.content_status(session, "ncii-1") == "blocked"
    assert reported == {"acct-k", "acct-u"}


def test_material_is_checked_sealed_opened_by_specialists_only_and_audited(world: World) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    (report_id,) = services.draft_pending(world.rep)
    original = world.files["c-1"].read_bytes()
    with pytest.raises(MaterialMismatch):
        services.supply_material(world.rep, report_id, "c-1", original + b"x", "c-1.jpg")
    with pytest.raises(MaterialGone):
        services.open_material(world.rep, report_id, "c-1", actor=SPECIALIST)
    services.supply_material(world.rep, report_id, "c-1", original, "../../c-1.jpg")
    with world.rep.db.read() as session:
        row = session.scalars(select(ReportedFile)).one()
        assert row.sealed is not None and original not in row.sealed and row.file_name == "c-1.jpg"
    with pytest.raises(ReportingError, match="only child-safety"):
        services.open_material(world.rep, report_id, "c-1", actor=MODERATOR)
    assert services.open_material(world.rep, report_id, "c-1", actor=SPECIALIST) == original
    with world.rep.db.read() as session:
        opened = session.scalars(select(AuditEntry).where(AuditEntry.action == "report.material_opened")).all()
    assert [(e.actor, e.subject) for e in opened] == [(SPECIALIST.actor, f"report:{report_id}")]


def test_material_is_purged_after_the_preservation_period_and_the_purge_logged(world: World) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    (report_id,) = services.draft_pending(world.rep)
    services.supply_material(world.rep, report_id, "c-1", world.files["c-1"].read_bytes(), "c-1.jpg")
    world.clock.advance(days=89)
    assert services.purge_expired(world.rep) == []
    world.clock.advance(days=1, seconds=1)
    assert services.purge_expired(world.rep) == [report_id]
    assert services.purge_expired(world.rep) == []
    with pytest.raises(MaterialGone):
        services.open_material(world.rep, report_id, "c-1", actor=SPECIALIST)
    with world.rep.db.read() as session:
        view = services.report_view(session, services.get_report(session, report_id))
        purges = session.scalars(select(AuditEntry).where(AuditEntry.action == "report.purged")).all()
    assert view["purged_at"] is not None and view["files"][0]["sha256"]  # the hashes live on
    assert len(purges) == 1
    assert verify(world.rep.db).ok


def test_a_sent_report_can_no_longer_change(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    services.send(world.rep, report_id, actor=SPECIALIST)
    with pytest.raises(InvalidTransition):
        services.revise(world.rep, report_id, urgent_reason="late")
    with pytest.raises(InvalidTransition):
        services.send(world.rep, report_id, actor=SPECIALIST)


def test_export_writes_each_report_as_sent_and_drafts_as_they_would_be(
        world: World, fake_ncmec: FakeNcmec, tmp_path: Path) -> None:
    world.known("k-1", "acct-a", seed=1)
    world.confirmed("c-2", "acct-b", seed=3)
    services.draft_pending(world.rep)
    with world.rep.db.read() as session:
        by_account = {r.account_id: r.id for r in services.list_reports(session)}
    sent, draft = by_account["acct-a"], by_account["acct-b"]
    services.send(world.rep, sent, actor=SPECIALIST)
    world.deliver()
    written = services.export(world.rep, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        f"{r}.{ext}" for r in (sent, draft) for ext in ("ncmec.xml", "eu-centre.json"))
    with world.rep.db.read() as session:
        as_sent = services.deliveries_of(session, sent)
    assert (tmp_path / "out" / f"{sent}.ncmec.xml").read_text() == next(iter(as_sent.values())).document
    for path in written:
        if path.suffix == ".xml":
            assert SCHEMA.validate(etree.fromstring(path.read_bytes())), SCHEMA.error_log
    body = json.loads((tmp_path / "out" / f"{sent}.eu-centre.json").read_text())
    ((ncmec_id, _),) = fake_ncmec.reports.items()
    assert body["also_reported_to"] == [{"body": "NCMEC", "country": "US", "report_id": str(ncmec_id)}]
    assert body["material_kind"] == "known" and body["removed"] is True and body["urgent"] is False


def test_a_report_that_cannot_be_validated_is_not_sent_and_nothing_changes(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    world.rep = services.Reporting(world.rep.db, world.clock, world.rep.sealer,
                                   replace(world.rep.settings, ncmec_xsd=None))
    with pytest.raises(InvalidReport, match="no CyberTipline schema"):
        services.send(world.rep, report_id, actor=SPECIALIST)
    with world.rep.db.read() as session:
        assert services.get_report(session, report_id).state == "draft"
        assert services.deliveries_of(session, report_id) == {}
        assert session.scalars(select(OutboxMessage)).all() == []


def test_drafting_rounds_racing_put_each_piece_of_material_into_one_report(world: World) -> None:
    world.known("k-1", "acct-a", seed=1)
    world.confirmed("c-1", "acct-a", seed=2)
    barrier = threading.Barrier(4)

    def round_() -> list[str]:
        barrier.wait()
        return services.draft_pending(world.rep)

    with ThreadPoolExecutor(4) as pool:
        rounds = list(pool.map(lambda _: round_(), range(4)))
    assert sum(len(r) for r in rounds) == 1  # one round drafted, the others found it reported
    with world.rep.db.read() as session:
        assert len(services.list_reports(session)) == 1
        assert sorted(f.content_id for f in session.scalars(select(ReportedFile))) == ["c-1", "k-1"]
    (report_id,) = next(r for r in rounds if r)
    with pytest.raises(IntegrityError), world.rep.db.write() as session:  # the schema holds the line too
        twin = ChildSafetyReport(
            id="twin", account_id="acct-a", account_country="DE", incident_type="x", incident_at=world.clock.now(),
            trigger="specialist", urgent_reason="", removed=True, fingerprint="", state="draft",
            created_at=world.clock.now(), sent_by="", preserve_until=world.clock.now())
        session.add(twin)
        session.flush()
        session.add(ReportedFile(report_id="twin", content_id="c-1", account_id="acct-a", trigger="specialist",
                                 content_type="image", md5="", sha256="", classification="",
                                 uploaded_at=world.clock.now(), file_name="", sealed=None, size=0,
                                 ncmec_file_id="", ncmec_md5="", ncmec_details_sent=False, attached=False))
    assert report_id


def test_a_purged_draft_takes_neither_material_nor_new_files(world: World) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    (report_id,) = services.draft_pending(world.rep)
    world.clock.advance(days=91)
    assert services.purge_expired(world.rep) == [report_id]
    with pytest.raises(MaterialGone, match="purged"):
        services.supply_material(world.rep, report_id, "c-1", world.files["c-1"].read_bytes(), "c-1.jpg")
    world.confirmed("c-2", "acct-b", seed=3)
    (fresh,) = services.draft_pending(world.rep)
    assert fresh != report_id
    with world.rep.db.read() as session:
        assert [f.content_id for f in services.files_of(session, report_id)] == ["c-1"]


def test_preservation_runs_from_the_sending_and_never_purges_a_report_on_its_way(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    (report_id,) = services.draft_pending(world.rep)
    services.supply_material(world.rep, report_id, "c-1", world.files["c-1"].read_bytes(), "c-1.jpg")
    world.clock.advance(days=80)  # reviewed slowly
    services.send(world.rep, report_id, actor=SPECIALIST)
    fake_ncmec.fail_next("/submit", 1000)
    assert world.deliver().retrying == 1
    world.clock.advance(days=200)  # still queued (NCMEC down for months): its material must stay
    assert services.purge_expired(world.rep) == []
    assert world.deliver().delivered == 1
    with world.rep.db.read() as session:
        report = services.get_report(session, report_id)
        assert report.preserve_until == report.sent_at + dt.timedelta(days=90)  # type: ignore[operator]
    assert services.purge_expired(world.rep) == [report_id]  # finished and past its period


def test_text_xml_cannot_carry_is_refused_or_stripped_never_a_500(world: World, tmp_path: Path) -> None:
    world.confirmed("c-1", "acct-b", seed=2, url="https://video.example/v/\x01c-1")
    (report_id,) = services.draft_pending(world.rep)
    with pytest.raises(InvalidReport, match="control characters"):
        services.revise(world.rep, report_id, urgent_reason="child\x00 at risk")
    services.supply_material(world.rep, report_id, "c-1", world.files["c-1"].read_bytes(), "c\x07-1\x1b.jpg")
    with world.rep.db.read() as session:
        report = services.get_report(session, report_id)
        assert report.urgent_reason == ""
        assert services.files_of(session, report_id)[0].file_name == "c-1.jpg"
        document = services.ncmec_document(session, world.rep, report)
    assert SCHEMA.validate(etree.fromstring(document))
    assert [u.text for u in etree.fromstring(document).iter("url")] == ["https://video.example/v/c-1"]
    with world.rep.db.write() as session:  # whatever else slips in is an invalid report, not a crash
        services.get_report(session, report_id).account_id = "acct\x02b"
    with pytest.raises(InvalidReport, match="cannot be written as XML"):
        services.export(world.rep, tmp_path / "out")


def test_export_files_are_owner_only_and_the_export_is_audited(world: World, tmp_path: Path) -> None:
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    written = services.export(world.rep, tmp_path / "out", actor="auditor-1")
    assert len(written) == 2 and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    with world.rep.db.read() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "reports.exported")).all()
    assert entry.actor == "auditor-1" and entry.details["reports"] == [report_id]
    assert verify(world.rep.db).ok


def test_export_carries_each_files_details_as_sent_to_ncmec(world: World, fake_ncmec: FakeNcmec,
                                                            tmp_path: Path) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    world.confirmed("c-2", "acct-b", seed=3)
    (report_id,) = services.draft_pending(world.rep)
    services.supply_material(world.rep, report_id, "c-1", world.files["c-1"].read_bytes(), "c-1.jpg")
    services.send(world.rep, report_id, actor=SPECIALIST)  # c-2 goes by its hashes alone: no <fileDetails>
    world.deliver()
    world.clock.advance(days=1)
    written = services.export(world.rep, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        [f"{report_id}.ncmec.xml", f"{report_id}.ncmec.c-1.file.xml", f"{report_id}.eu-centre.json"])
    ((_, received),) = fake_ncmec.reports.items()
    ((_, sent),) = received.files.items()
    exported = (tmp_path / "out" / f"{report_id}.ncmec.c-1.file.xml").read_bytes()
    assert exported == sent["details"]
    assert SCHEMA.validate(etree.fromstring(exported)), SCHEMA.error_log


def test_the_same_file_uploaded_again_by_the_account_is_recorded_and_no_longer_a_candidate(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    world.known("k-2", "acct-a", seed=1)  # the same file again, in the same round
    world.known("k-3", "acct-b", seed=1)  # the same file, another account: its own report
    drafted = services.draft_pending(world.rep)
    assert len(drafted) == 2
    with world.rep.db.read() as session:
        assert services.candidates(session) == []
        report = next(r for r in services.list_reports(session) if r.account_id == "acct-a")
        view = services.report_view(session, report)
        document = etree.fromstring(services.ncmec_document(session, world.rep, report))
        body = services.eu_centre_document(session, world.rep, report)
    assert [f["content_id"] for f in view["files"]] == ["k-1"]  # the same bytes are not a second file
    assert [(r["content_id"], r["repeat_of"], r["after_sending"]) for r in view["repeats"]] == [
        ("k-2", "k-1", False)]
    assert "k-2 at " in document.findtext("additionalInfo") and SCHEMA.validate(document)
    assert [r["content_id"] for r in body["incident"]["repeated_uploads"]] == ["k-2"]
    with world.rep.db.read() as session:
        pdq = moderated.content(session, "k-1")
    assert pdq is not None and len(body["content"][0]["pdq"]) == 64 and body["content"][0]["pdq"] == pdq.signal("pdq")


def test_the_same_file_uploaded_again_after_the_report_went_is_covered_by_it(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    services.send(world.rep, report_id, actor=SPECIALIST)
    world.deliver()
    world.clock.advance(hours=1)
    world.known("k-2", "acct-a", seed=1)  # the same file again, after the report went
    assert services.draft_pending(world.rep) == []
    with world.rep.db.read() as session:
        assert services.candidates(session) == []  # was a candidate for ever
        view = services.report_view(session, services.get_report(session, report_id))
    assert [(r["content_id"], r["repeat_of"], r["after_sending"]) for r in view["repeats"]] == [
        ("k-2", "k-1", True)]
    assert len(fake_ncmec.reports) == 1


def test_each_duplicate_avoided_is_an_event_and_transparency_counts_it(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    world.known("k-2", "acct-a", seed=1)  # again, while the report is a draft
    (report_id,) = services.draft_pending(world.rep)
    services.send(world.rep, report_id, actor=SPECIALIST)
    world.deliver()
    world.known("k-3", "acct-a", seed=1)  # again, after the report went
    world.known("k-4", "acct-b", seed=2)  # another account's own material: a report, no duplicate
    services.draft_pending(world.rep)
    assert services.draft_pending(world.rep) == []  # a later round records nothing twice
    with world.rep.db.read() as session:
        recorded = [event_log.payload(e, RepeatRecorded) for e in services.report_history(session, report_id)
                    if e.kind == ReportEventKind.REPEAT_RECORDED.value]
        [f] = metrics.figures(metrics.undated(metrics.direct_cells(session, dt.date(2000, 1, 1),
                                                                   dt.date(2100, 1, 1))))
    assert [(r.content_id, r.repeat_of, r.after_sending) for r in recorded] == [
        ("k-2", "k-1", False), ("k-3", "k-1", True)]
    assert f.reports_duplicates_avoided == 2 and f.reports_sent == {"ncmec": 1}
