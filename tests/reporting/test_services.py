"""Drafting by account, preservation (sealed, audited openings, purge) and export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from bastion.core.audit.models import AuditEntry
from bastion.core.audit.services import verify
from bastion.core.outbox.models import OutboxMessage
from bastion.reporting import services
from bastion.reporting.interfaces import InvalidReport, MaterialGone, MaterialMismatch, NotADraft, ReportingError
from bastion.reporting.models import ReportedFile
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
    with pytest.raises(NotADraft):
        services.revise(world.rep, report_id, urgent_reason="late")
    with pytest.raises(NotADraft):
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
