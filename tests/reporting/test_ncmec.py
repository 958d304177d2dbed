"""The NCMEC side end to end against a fake CyberTipline on loopback: XML, upload, errors, resume, retract."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from bastion.core.db import Database
from bastion.core.outbox.models import DeliveryState as OutboxState
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import deliver_due
from bastion.reporting import ncmec, services
from bastion.reporting.interfaces import AlreadyReported, Classification, InvalidReport
from bastion.reporting.ncmec import CodeOutcome
from bastion.reporting.services import Reporting
from bastion.reporting.tasks import ReportSender
from tests.factories.ncmec import PASSWORD, XSD, FakeNcmec
from tests.reporting.conftest import NO_JITTER, SPECIALIST, World, make_settings, make_world

SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))


def _view(world: World, report_id: str) -> dict[str, object]:
    with world.rep.db.read() as session:
        return services.report_view(session, services.get_report(session, report_id))


def _ready(world: World, content_ids: list[str]) -> str:
    """Draft, supply the platform's bytes for every file, and return the report id."""
    (report_id,) = services.draft_pending(world.rep)
    for content_id in content_ids:
        services.supply_material(world.rep, report_id, content_id, world.files[content_id].read_bytes(),
                                 f"{content_id}.jpg")
    return report_id


@pytest.mark.parametrize("code, outcome", [
    (0, CodeOutcome.OK), (1000, CodeOutcome.RETRY), (1111, CodeOutcome.RETRY), (1210, CodeOutcome.RETRY),
    (2000, CodeOutcome.AUTH), (3100, CodeOutcome.AUTH), (4100, CodeOutcome.REJECTED), (4110, CodeOutcome.REJECTED),
    (4200, CodeOutcome.REJECTED), (5001, CodeOutcome.GONE), (5101, CodeOutcome.ALREADY_RETRACTED),
    (5102, CodeOutcome.ALREADY_FINISHED), (9999, CodeOutcome.RETRY)])
def test_every_response_code_maps_to_one_outcome(code: int, outcome: CodeOutcome) -> None:
    assert ncmec.code_outcome(code) is outcome


def test_generated_reports_validate_against_the_xsd_in_several_scenarios(world: World) -> None:
    world.known("k-1", "acct-a", seed=1)  # known material, classified A1 by its bank entry
    world.confirmed("c-1", "acct-b", seed=2, url="https://video.example/v/c-1")
    world.confirmed("c-2", "acct-b", seed=3, url="https://video.example/v/c-2")
    drafted = services.draft_pending(world.rep)
    assert len(drafted) == 2
    with world.rep.db.read() as session:
        by_account = {r.account_id: r for r in services.list_reports(session)}
    a, b = by_account["acct-a"], by_account["acct-b"]
    services.revise(world.rep, b.id, urgent_reason="ongoing abuse of a child visible in the video",
                    classifications={"c-1": Classification.B1, "c-2": Classification.A2})
    services.supply_material(world.rep, b.id, "c-1", world.files["c-1"].read_bytes(), "c-1.jpg")
    with world.rep.db.read() as session:
        documents = [services.ncmec_document(session, world.rep, services.get_report(session, r.id)) for r in (a, b)]
        files = services.files_of(session, b.id) + services.files_of(session, a.id)
        report_b = services.get_report(session, b.id)
    for document in documents:
        assert SCHEMA.validate(etree.fromstring(document)), SCHEMA.error_log
    tree_b = etree.fromstring(documents[1])
    assert tree_b.findtext("incidentSummary/escalateToHighPriority").startswith("ongoing abuse")
    assert [u.text for u in tree_b.iter("url")] == ["https://video.example/v/c-1", "https://video.example/v/c-2"]
    assert tree_b.findtext("personOrUserReported/espIdentifier") == "acct-b"
    assert "c-2 md5=" in tree_b.findtext("additionalInfo")  # no bytes held for c-2: reported by its hashes
    assert "c-1 md5=" not in tree_b.findtext("additionalInfo")
    for i, f in enumerate(files):
        f.ncmec_file_id = f"file-{i}"
        details = services.file_details(report_b, f, "123456", "removed")
        assert SCHEMA.validate(etree.fromstring(details)), SCHEMA.error_log
        tree = etree.fromstring(details)
        assert {h.get("hashType"): h.text for h in tree.iter("originalFileHash")} == {"MD5": f.md5, "SHA256": f.sha256}
    assert [f.classification for f in files] == ["B1", "A2", "A1"]
    bad = ncmec.report_xml(ncmec.ReportFacts("Not a real incident type", dt.datetime.now(dt.UTC), "x", "", [], "r"),
                           world.rep.reporter)
    with pytest.raises(InvalidReport, match="does not validate"):
        ncmec.validate(bad, XSD)
    with pytest.raises(InvalidReport, match="no CyberTipline schema"):
        ncmec.validate(documents[0], None)


def test_submit_upload_fileinfo_finish_end_to_end(world: World, fake_ncmec: FakeNcmec) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    world.confirmed("c-2", "acct-b", seed=3)
    report_id = _ready(world, ["c-1", "c-2"])
    services.revise(world.rep, report_id, classifications={"c-1": Classification.A1, "c-2": Classification.B2})
    services.send(world.rep, report_id, actor=SPECIALIST)
    assert _view(world, report_id)["state"] == "queued"
    assert world.deliver().delivered == 1
    assert fake_ncmec.calls == ["/submit", "/upload", "/fileinfo", "/upload", "/fileinfo", "/finish"]
    ((ncmec_id, received),) = fake_ncmec.reports.items()
    assert received.finished and len(received.files) == 2
    md5s = {hashlib.md5(world.files[c].read_bytes()).hexdigest() for c in ("c-1", "c-2")}
    assert {f["md5"] for f in received.files.values()} == md5s
    classes = {etree.fromstring(f["details"]).findtext("industryClassification") for f in received.files.values()}
    assert classes == {"A1", "B2"}
    view = _view(world, report_id)
    assert view["state"] == "finished"
    assert view["centres"] == {"ncmec": {"state": "finished", "id": str(ncmec_id), "error": None,
                                         "centre_status": None}}


def test_validation_failure_4100_fails_with_the_error_and_is_not_retried(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _ready(world, ["k-1"])
    services.send(world.rep, report_id, actor=SPECIALIST)
    fake_ncmec.fail_next("/submit", 4100)
    assert world.deliver().dead == 1
    view = _view(world, report_id)
    assert view["state"] == "failed"
    assert "4100" in str(view["centres"]["ncmec"]["error"])  # type: ignore[index]
    world.clock.advance(hours=2)
    assert world.deliver().claimed == 0 and fake_ncmec.count("/submit") == 1


def test_authentication_failure_2000_stops_until_a_person_sends_again(
        db: Database, database_url: str, tmp_path: Path, fake_ncmec: FakeNcmec) -> None:
    world = make_world(db, tmp_path, make_settings(database_url, fake_ncmec.url, ncmec_password="wrong"))
    world.known("k-1", "acct-a", seed=1)
    report_id = _ready(world, ["k-1"])
    services.send(world.rep, report_id, actor=SPECIALIST)
    unset = ReportSender(Reporting(db, world.clock, world.rep.sealer, replace(world.rep.settings, ncmec_username="")))
    assert deliver_due(db, unset, clock=world.clock, policy=NO_JITTER).retrying == 1  # not configured: nothing sent
    assert fake_ncmec.calls == []
    world.clock.advance(seconds=3)
    assert world.deliver().dead == 1
    error = str(_view(world, report_id)["centres"]["ncmec"]["error"])  # type: ignore[index]
    assert "2000" in error and "credentials" in error and "wrong" not in error
    world.clock.advance(hours=2)
    assert world.deliver().claimed == 0 and fake_ncmec.reports == {}  # not retried blindly
    world.rep = Reporting(db, world.clock, world.rep.sealer, replace(world.rep.settings, ncmec_password=PASSWORD))
    world.sender = ReportSender(world.rep)  # the operator fixed the password
    services.resend(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    assert _view(world, report_id)["state"] == "finished" and len(fake_ncmec.reports) == 1


def test_server_error_1000_is_retried_with_back_off(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _ready(world, ["k-1"])
    services.send(world.rep, report_id, actor=SPECIALIST)
    fake_ncmec.fail_next("/submit", 1000)
    assert world.deliver().retrying == 1
    assert "1000" in str(_view(world, report_id)["centres"]["ncmec"]["error"])  # type: ignore[index]
    assert world.deliver().claimed == 0  # backing off
    world.clock.advance(seconds=3)
    assert world.deliver().delivered == 1
    assert _view(world, report_id)["state"] == "finished"
    assert fake_ncmec.count("/submit") == 2 and len(fake_ncmec.reports) == 1


def test_a_crash_between_submit_and_finish_resumes_without_a_second_report(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.confirmed("c-1", "acct-b", seed=2)
    world.confirmed("c-2", "acct-b", seed=3)
    report_id = _ready(world, ["c-1", "c-2"])
    services.send(world.rep, report_id, actor=SPECIALIST)
    fake_ncmec.fail_next("/upload", -1)  # the connection dies during the first upload
    assert world.deliver().retrying == 1
    view = _view(world, report_id)
    ((ncmec_id, received),) = fake_ncmec.reports.items()
    assert view["state"] == "submitted" and view["centres"]["ncmec"]["id"] == str(ncmec_id)  # type: ignore[index]
    assert not received.finished
    # Second life: a message whose deliverer died mid-way is claimed again once its lease runs out.
    with world.rep.db.write() as session:
        message = session.scalars(select(OutboxMessage)).one()
        message.state, message.locked_until = OutboxState.DELIVERING.value, world.clock.now()
    world.clock.advance(seconds=5)
    assert world.deliver().delivered == 1
    assert fake_ncmec.count("/submit") == 1 and len(fake_ncmec.reports) == 1
    assert received.finished and len(received.files) == 2
    assert _view(world, report_id)["state"] == "finished"


def test_retract_a_finished_report(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _ready(world, ["k-1"])
    services.send(world.rep, report_id, actor=SPECIALIST)
    world.deliver()
    services.retract(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    ((_, received),) = fake_ncmec.reports.items()
    assert received.retracted and _view(world, report_id)["state"] == "retracted"
    services.retract(world.rep, report_id, actor=SPECIALIST)  # already retracted: nothing more is queued
    assert world.deliver().claimed == 0


def test_the_same_material_is_never_reported_twice_to_one_centre(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _ready(world, ["k-1"])
    services.send(world.rep, report_id, actor=SPECIALIST)
    world.deliver()
    world.known("k-1-again", "acct-a", seed=1)  # the same account uploads the same file again
    assert services.draft_pending(world.rep) == []
    world.known("k-1-other", "acct-z", seed=1)  # another account: its own report
    (other,) = services.draft_pending(world.rep)
    assert _view(world, other)["account_id"] == "acct-z"
    with world.rep.db.write() as session:  # a forged draft with the first report's fingerprint is refused
        forged = services.get_report(session, other)
        forged.fingerprint = services.get_report(session, report_id).fingerprint
    with pytest.raises(AlreadyReported):
        services.send(world.rep, other, actor=SPECIALIST)
    assert _view(world, other)["state"] == "draft"


def test_a_report_ncmec_no_longer_has_is_submitted_anew_on_resend(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    report_id = _ready(world, ["k-1"])
    services.send(world.rep, report_id, actor=SPECIALIST)
    fake_ncmec.fail_next("/finish", 5001)  # deleted unfinished before we came back to it
    assert world.deliver().dead == 1
    view = _view(world, report_id)
    assert view["state"] == "failed" and view["centres"]["ncmec"]["id"] is None  # type: ignore[index]
    assert view["files"][0]["ncmec_file_id"] is None  # type: ignore[index]
    services.resend(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    assert fake_ncmec.count("/submit") == 2 and fake_ncmec.count("/upload") == 2
    assert _view(world, report_id)["state"] == "finished"


def test_original_file_name_is_the_users_name_from_intake_and_file_name_the_platforms(
        world: World, fake_ncmec: FakeNcmec) -> None:
    world.confirmed("c-1", "acct-b", seed=2, file_name="holiday 2026 (1).JPG")
    world.confirmed("c-2", "acct-b", seed=3)  # the platform gave no name at intake
    (report_id,) = services.draft_pending(world.rep)
    services.supply_material(world.rep, report_id, "c-1", world.files["c-1"].read_bytes(), "blob-7f3a.bin")
    services.supply_material(world.rep, report_id, "c-2", world.files["c-2"].read_bytes(), "blob-9c1e.bin")
    services.send(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    ((_, received),) = fake_ncmec.reports.items()
    names = {}
    for f in received.files.values():
        tree = etree.fromstring(f["details"])
        assert SCHEMA.validate(tree), SCHEMA.error_log
        names[tree.findtext("fileName")] = tree.findtext("originalFileName")
    assert names == {"blob-7f3a.bin": "holiday 2026 (1).JPG", "blob-9c1e.bin": None}


def test_a_report_without_a_url_still_says_where_the_incident_happened(world: World) -> None:
    world.known("k-1", "acct-a", seed=1)  # blocked at upload: never had a public URL
    (report_id,) = services.draft_pending(world.rep)
    with world.rep.db.read() as session:
        document = services.ncmec_document(session, world.rep, services.get_report(session, report_id))
    tree = etree.fromstring(document)
    assert SCHEMA.validate(tree), SCHEMA.error_log
    (details,) = tree.findall("internetDetails")  # the schema's annotation: at least one per report
    assert details.find("webPageIncident/url") is None
    assert "Example Video Platform" in details.findtext("webPageIncident/additionalInfo")
