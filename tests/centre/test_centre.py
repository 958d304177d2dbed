"""The EU Centre end to end over real HTTP: two platforms, one fake NCMEC, one law-enforcement receiver."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bastion.centre import services as centre
from bastion.centre.app import create_centre_app
from bastion.centre.models import CentreReport
from bastion.core import signing
from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import OutboxWorker, RetryPolicy, deliver_due
from bastion.core.outbox.webhooks import WebhookSender, canonical_body, verify_signature
from bastion.core.signing import SigningKey
from bastion.reporting import services
from bastion.reporting.interfaces import CentreName, InvalidTransition
from bastion.reporting.tasks import ReportSender
from tests.factories.live import serve
from tests.factories.ncmec import FakeNcmec
from tests.factories.receiver import Receiver
from tests.reporting.conftest import NOW, SPECIALIST, World, make_settings, make_world

SECRET = b"centre-forwarding-secret"


@pytest.fixture
def centre_url(centre_db: Database, receiver: Receiver) -> Iterator[str]:
    settings = Settings(centre_forward=f"DE={receiver.url},EUROPOL={receiver.url}/europol",
                        centre_forward_secret=SECRET, outbox_interval_seconds=0.05)
    # The platforms' clock (NOW): the Centre checks each report's signature time against its own.
    with serve(create_centre_app(settings, db=centre_db, clock=FrozenClock(NOW))) as base:
        yield base


@dataclass(frozen=True)
class Provider:
    """A provider registered at the Centre: its API token and the key its reports are signed with."""

    name: str
    token: str
    key: SigningKey


def _provider(centre_db: Database, name: str) -> Provider:
    token = auth.create_token(centre_db, role=Role.PLATFORM, name=name, actor="test")
    key = SigningKey.generate()
    centre.register_key(centre_db, name, key.public_text, FrozenClock(NOW))
    return Provider(name, token, key)


def _platform(db: Database, database_url: str, tmp: Path, fake: FakeNcmec, centre_url: str, token: str,
              key: SigningKey | None = None) -> World:
    return make_world(db, tmp, make_settings(database_url, fake.url, eu_centre_url=f"{centre_url}/v1/centre/reports",
                                             eu_centre_token=token,
                                             orders_signing_key=(key or SigningKey.generate()).to_text()))


def _send(centre_url: str, provider: Provider, body: dict[str, Any]) -> httpx.Response:
    """POST a report as a platform does: canonical JSON, signed now with the provider's key."""
    raw = canonical_body(body)
    headers = {"Authorization": f"Bearer {provider.token}", "Content-Type": "application/json",
               **provider.key.headers(raw, NOW)}
    return httpx.post(f"{centre_url}/v1/centre/reports", content=raw, headers=headers)


def _report_and_deliver(world: World, account: str) -> dict[str, Any]:
    (report_id,) = services.draft_pending(world.rep)
    services.send(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1  # NCMEC, which then queues the EU Centre's report
    assert world.deliver().delivered == 1  # the EU Centre
    with world.rep.db.read() as session:
        return services.report_view(session, services.get_report(session, report_id))


def _forwards(receiver: Receiver, settle: float = 0.5, expect: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10  # eventual delivery by the Centre's outbox, not a speed check
    while len(receiver.requests) < expect and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(settle)  # long enough for a wrong second forward to arrive too
    for r in receiver.requests:
        assert verify_signature(SECRET, r.headers["Bastion-Signature"], r.body, now=NOW)
    return [json.loads(r.body) for r in receiver.requests]


def test_the_same_material_from_two_providers_accounts_reaches_law_enforcement_as_two_leads(
        db: Database, database_url: str, second_db: Database, second_platform_url: str, centre_db: Database,
        centre_url: str, fake_ncmec: FakeNcmec, receiver: Receiver, tmp_path: Path) -> None:
    # Changed deliberately (issue 14): the second report was dropped as a duplicate because its file was known.
    # Two accounts sharing known material are two suspects: both reports go to law enforcement.
    pa, pb = _provider(centre_db, "Platform A"), _provider(centre_db, "Platform B")
    a = _platform(db, database_url, tmp_path / "a", fake_ncmec, centre_url, pa.token, pa.key)
    b = _platform(second_db, second_platform_url, tmp_path / "b", fake_ncmec, centre_url, pb.token, pb.key)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a.known("a-upload", "a-user-1", seed=11)
    b.known("b-upload", "b-user-9", seed=11)  # the same file, on another platform
    first = _report_and_deliver(a, "a-user-1")
    second = _report_and_deliver(b, "b-user-9")
    assert first["centres"]["eu_centre"]["centre_status"] == "forwarded"
    assert first["centres"]["eu_centre"]["error"] is None  # the Centre's null reason is no text "None"
    assert second["centres"]["eu_centre"]["centre_status"] == "forwarded"
    assert second["centres"]["eu_centre"]["error"] == "1 of 1 files were already known"
    assert first["centres"]["ncmec"]["id"] != second["centres"]["ncmec"]["id"]  # NCMEC got both, as it should
    forwards = {f["centre_reference"]: f for f in _forwards(receiver, expect=2)}
    assert sorted(forwards) == sorted([first["centres"]["eu_centre"]["id"], second["centres"]["eu_centre"]["id"]])
    forward = forwards[first["centres"]["eu_centre"]["id"]]
    assert forward["member_state"] == "DE" and receiver.requests[0].path == "/hooks/bastion"
    assert forward["also_reported_to"] == [{"body": "NCMEC", "country": "US",
                                            "report_id": first["centres"]["ncmec"]["id"]}]
    assert [u["account_id"] for u in forwards[second["centres"]["eu_centre"]["id"]]["users"]] == ["b-user-9"]


def test_the_same_accounts_report_sent_twice_is_a_duplicate_another_account_of_the_provider_is_not(
        centre_db: Database, centre_url: str, receiver: Receiver) -> None:
    provider = _provider(centre_db, "Platform H")
    known = [{"content_id": "k", "sha256": "5a" * 32}]
    first = _post(centre_url, provider, _body("r-1", known))
    again = _post(centre_url, provider, _body("r-2", known))  # the same suspect's report, sent again
    assert (again["status"], again["duplicate_of"]) == ("duplicate", first["id"])
    other = _post(centre_url, provider, _body("r-3", known, users=[{"account_id": "someone-else"}]))
    assert other["status"] == "forwarded" and other["reason"] == "1 of 1 files were already known"
    assert len(_forwards(receiver, expect=2)) == 2


def test_reports_already_received_under_an_ncmec_id_or_unfounded_are_not_forwarded(
        centre_db: Database, centre_url: str, receiver: Receiver) -> None:
    provider = _provider(centre_db, "Platform C")
    body: dict[str, Any] = {
        "provider": {"name": "C"}, "provider_reference": "r-1", "reported_at": NOW.isoformat(),
        "content": [{"content_id": "x", "sha256": "ab" * 32}], "material_kind": "new", "removed": True,
        "urgent": False, "legal_basis": "Art. 12", "users": [{"account_id": "u"}],
        "geography": {"account_country": "US"},
        "also_reported_to": [{"body": "NCMEC", "country": "US", "report_id": "777"}]}
    first = _send(centre_url, provider, body)
    assert first.status_code == 201 and first.json()["status"] == "forwarded"
    assert first.json()["forwarded_to"] == "EUROPOL"  # not an EU Member State: Europol
    again = _send(centre_url, provider, body)
    assert again.json()["id"] == first.json()["id"]  # a retried delivery files nothing new
    other = {**body, "content": [{"content_id": "x", "sha256": "ef" * 32}]}  # the same reference, another file
    conflict = _send(centre_url, provider, other)
    assert conflict.status_code == 409 and "r-1" in conflict.json()["detail"]
    assert conflict.headers["content-type"].startswith("application/problem+json")
    renamed = {**body, "provider_reference": "r-2", "content": [{"content_id": "y", "sha256": "cd" * 32}]}
    dup = _send(centre_url, provider, renamed).json()
    assert (dup["status"], dup["duplicate_of"]) == ("duplicate", first.json()["id"])
    empty = {**body, "provider_reference": "r-3", "content": [{"content_id": "z"}], "also_reported_to": []}
    unfounded = _send(centre_url, provider, empty).json()
    assert unfounded["status"] == "unfounded" and "no content data" in unfounded["reason"]
    assert len(_forwards(receiver)) == 1 and receiver.requests[0].path == "/hooks/bastion/europol"


def test_the_centre_requires_a_provider_token_and_valid_reports(centre_db: Database, centre_url: str) -> None:
    url = f"{centre_url}/v1/centre/reports"
    assert httpx.post(url, json={}).status_code == 401
    moderator = auth.create_token(centre_db, role=Role.MODERATOR, name="m", actor="test")
    assert httpx.post(url, json={}, headers={"Authorization": f"Bearer {moderator}"}).status_code == 403
    platform = auth.create_token(centre_db, role=Role.PLATFORM, name="p", actor="test")
    bad = httpx.post(url, json={"provider_reference": "x"}, headers={"Authorization": f"Bearer {platform}"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    with centre_db.read() as session:
        assert centre.list_reports(session) == []
    admin = auth.create_token(centre_db, role=Role.ADMIN, name="a", actor="test")
    assert httpx.get(url, headers={"Authorization": f"Bearer {platform}"}).status_code == 403
    assert httpx.get(url, headers={"Authorization": f"Bearer {admin}"}).json() == {"reports": []}


def test_urgent_reports_are_forwarded_first(centre_db: Database, receiver: Receiver) -> None:
    clock = FrozenClock(NOW)
    c = centre.Centre(centre_db, clock, {"FR": receiver.url, "EUROPOL": f"{receiver.url}/europol"})
    base: dict[str, Any] = {"users": [{"account_id": "u"}], "geography": {"account_country": "FR"},
                            "also_reported_to": []}
    for i, urgent in enumerate([False, False, True]):
        centre.receive(c, "provider", {**base, "provider_reference": f"r-{i}", "urgent": urgent,
                                       "content": [{"sha256": f"{i:064x}"}]})
        clock.advance(seconds=1)
    sender = WebhookSender(SECRET, clock=clock)
    deliver_due(centre_db, sender, clock=clock, limit=1, policy=RetryPolicy(jitter=0))
    (first,) = [json.loads(r.body) for r in receiver.requests]
    assert first["urgent"] is True
    deliver_due(centre_db, sender, clock=clock, limit=5, policy=RetryPolicy(jitter=0))
    assert [json.loads(r.body)["urgent"] for r in receiver.requests] == [True, False, False]
    with centre_db.read() as session:
        assert len(session.scalars(select(OutboxMessage)).all()) == 3


def test_a_provider_with_a_wrong_centre_token_sees_the_failure(
        db: Database, database_url: str, centre_url: str, fake_ncmec: FakeNcmec, receiver: Receiver,
        tmp_path: Path) -> None:
    world = _platform(db, database_url, tmp_path, fake_ncmec, centre_url, "not-a-token")
    world.known("k-1", "acct-a", seed=12)
    (report_id,) = services.draft_pending(world.rep)
    services.send(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1  # NCMEC
    assert world.deliver().dead == 1  # the Centre refuses the token: permanent, shown, not retried
    with world.rep.db.read() as session:
        view = services.report_view(session, services.get_report(session, report_id))
    assert view["state"] == "finished"  # NCMEC's side is done
    assert view["centres"]["eu_centre"] == {"state": "failed", "id": None, "error": "EU Centre: HTTP 401",
                                            "centre_status": None}
    assert receiver.requests == []


def _post(centre_url: str, provider: Provider, body: dict[str, Any]) -> dict[str, Any]:
    response = _send(centre_url, provider, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _body(reference: str, content: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"provider": {"name": "C"}, "provider_reference": reference, "reported_at": NOW.isoformat(),
            "content": content, "material_kind": "new", "removed": True, "urgent": False, "legal_basis": "Art. 12",
            "users": [{"account_id": "u"}], "geography": {"account_country": "DE"}, **extra}


def test_duplicates_are_recognised_per_file_by_any_of_its_hashes(centre_db: Database, centre_url: str) -> None:
    token = _provider(centre_db, "Platform D")
    x, y, z, m, n = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 16, "e5" * 16
    first = _post(centre_url, token, _body("r-1", [{"content_id": "1", "sha256": x, "md5": m}]))
    assert first["status"] == "forwarded"
    # The same file, hashed by another provider's tool: its MD5 matches, its SHA-256 was never seen.
    same = _post(centre_url, token, _body("r-2", [{"content_id": "2", "sha256": y, "md5": m}]))
    assert (same["status"], same["duplicate_of"]) == ("duplicate", first["id"])
    by_new_hash = _post(centre_url, token, _body("r-3", [{"content_id": "3", "sha256": y}]))
    assert by_new_hash["status"] == "duplicate"  # all the known file's hashes were claimed
    mixed = _post(centre_url, token, _body("r-4", [{"content_id": "4", "sha256": x},
                                                   {"content_id": "5", "sha256": z, "md5": n}]))
    assert mixed["status"] == "forwarded" and mixed["reason"] == "1 of 2 files were already known"


def test_an_unfounded_report_does_not_make_a_valid_one_with_its_ncmec_id_a_duplicate(
        centre_db: Database, centre_url: str) -> None:
    token = _provider(centre_db, "Platform E")
    ncmec_id = [{"body": "NCMEC", "country": "US", "report_id": "4242"}]
    unfounded = _post(centre_url, token, _body("r-1", [{"content_id": "1", "sha256": "f6" * 32}],
                                               users=[], also_reported_to=ncmec_id))
    assert unfounded["status"] == "unfounded"
    valid = _post(centre_url, token, _body("r-2", [{"content_id": "1", "sha256": "f6" * 32}],
                                           also_reported_to=ncmec_id))
    assert valid["status"] == "forwarded"
    again = _post(centre_url, token, _body("r-3", [{"content_id": "9", "sha256": "07" * 32}],
                                           also_reported_to=ncmec_id))
    assert (again["status"], again["duplicate_of"]) == ("duplicate", valid["id"])


def test_the_centre_refuses_to_start_without_a_europol_endpoint(centre_db: Database, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="EUROPOL"):
        centre.parse_forwarding("DE=https://lea.example/in")
    with pytest.raises(ValueError, match="EUROPOL"):
        centre.Centre(centre_db, FrozenClock(NOW), {"DE": "https://lea.example/in"})
    with pytest.raises(ValueError, match="EUROPOL"):
        create_centre_app(Settings(centre_forward="DE=https://lea.example/in"), db=centre_db)
    env = {**os.environ, "BASTION_CENTRE_DATABASE_URL": centre_db.url, "BASTION_CENTRE_FORWARD_SECRET": "s",
           "BASTION_CENTRE_FORWARD": "DE=https://lea.example/in", "CI": "true"}
    run = subprocess.run([sys.executable, "-m", "bastion", "centre", "serve", "--port", "9"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "EUROPOL" in run.stderr and "Traceback" not in run.stderr


def test_the_centre_caps_bodies_stores_only_known_fields_and_reports_its_status(
        centre_db: Database, centre_url: str) -> None:
    token = _provider(centre_db, "Platform F")
    headers = {"Authorization": f"Bearer {token.token}", "Content-Type": "application/json"}
    huge = httpx.post(f"{centre_url}/v1/centre/reports", content=b" " * (9 * 1024 * 1024), headers=headers)
    assert huge.status_code == 413 and huge.headers["content-type"].startswith("application/problem+json")
    filed = _post(centre_url, token, _body("r-1", [{"content_id": "1", "sha256": "18" * 32}],
                                           smuggled={"anything": "at all"}))
    with centre_db.read() as session:
        stored = session.get(CentreReport, filed["id"])
        assert stored is not None and "smuggled" not in stored.body
    admin = auth.create_token(centre_db, role=Role.ADMIN, name="operator", actor="test")
    status = httpx.get(f"{centre_url}/status", headers={"Authorization": f"Bearer {admin}"}).json()
    assert status["status"] == "ok" and status["database"] == "ok" and set(status["outbox"]) >= {"pending"}
    assert httpx.get(f"{centre_url}/status").json() == {"status": "ok"}


def test_a_failed_eu_centre_delivery_can_be_sent_again(
        db: Database, database_url: str, centre_db: Database, centre_url: str, fake_ncmec: FakeNcmec,
        receiver: Receiver, tmp_path: Path) -> None:
    world = _platform(db, database_url, tmp_path, fake_ncmec, centre_url, "not-a-token")
    world.known("k-1", "acct-a", seed=12)
    (report_id,) = services.draft_pending(world.rep)
    services.send(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    assert world.deliver().dead == 1  # wrong token
    provider = _provider(centre_db, "Platform G")
    world.rep = services.Reporting(db, world.clock, world.rep.sealer,
                                   replace(world.rep.settings, eu_centre_token=provider.token,
                                           orders_signing_key=provider.key.to_text()))
    world.sender = ReportSender(world.rep)
    with pytest.raises(InvalidTransition):  # NCMEC's delivery did not fail: nothing to send again there
        services.resend(world.rep, report_id, actor=SPECIALIST)
    services.resend(world.rep, report_id, actor=SPECIALIST, centre=CentreName.EU_CENTRE)
    assert world.deliver().delivered == 1
    with world.rep.db.read() as session:
        view = services.report_view(session, services.get_report(session, report_id))
    assert view["centres"]["eu_centre"]["state"] == "finished"
    assert view["centres"]["eu_centre"]["centre_status"] == "forwarded"


def test_an_urgent_report_that_failed_once_still_goes_before_the_backlog(
        centre_db: Database, receiver: Receiver) -> None:
    clock = FrozenClock(NOW)
    c = centre.Centre(centre_db, clock, {"FR": receiver.url, "EUROPOL": f"{receiver.url}/europol"})
    base: dict[str, Any] = {"users": [{"account_id": "u"}], "geography": {"account_country": "FR"},
                            "also_reported_to": []}
    outbox = OutboxWorker(centre_db, WebhookSender(SECRET, clock=clock), 1.0, clock, limit=1,
                          policy=RetryPolicy(base_seconds=2.0, jitter=0))
    centre.receive(c, "provider", {**base, "provider_reference": "urgent", "urgent": True,
                                   "content": [{"sha256": "99" * 32}]})
    receiver.answer_next(1, 503)
    assert outbox.run_once().retrying == 1  # the authority's endpoint hiccups
    for i in range(2):  # a backlog arrives during its back-off (2 s)
        clock.advance(seconds=0.5)
        centre.receive(c, "provider", {**base, "provider_reference": f"r-{i}", "urgent": False,
                                       "content": [{"sha256": f"{i:064x}"}]})
    assert outbox.run_once().claimed == 1
    assert [json.loads(r.body)["urgent"] for r in receiver.requests] == [True, False]  # hiccup, then backlog
    clock.advance(seconds=2)  # the urgent report's back-off has passed: it goes before the rest of the backlog
    assert outbox.run_once().delivered == 1
    assert json.loads(receiver.requests[-1].body)["urgent"] is True


def test_the_centre_takes_only_reports_signed_by_the_providers_registered_key_and_keeps_the_signature(
        centre_db: Database, centre_url: str) -> None:
    provider, other = _provider(centre_db, "Platform S"), _provider(centre_db, "Platform T")
    body = _body("r-1", [{"content_id": "1", "sha256": "3c" * 32}])
    raw = canonical_body(body)
    url, auth_header = f"{centre_url}/v1/centre/reports", {"Authorization": f"Bearer {provider.token}"}

    def refused(headers: dict[str, str], content: bytes = raw) -> tuple[int, str]:
        answer = httpx.post(url, content=content, headers={**auth_header, "Content-Type": "application/json",
                                                           **headers})
        return answer.status_code, answer.json().get("reason", "")

    assert refused({}) == (401, "unsigned")
    assert refused(other.key.headers(raw, NOW)) == (401, "unknown_key")  # another provider's key
    assert refused(SigningKey.generate().headers(raw, NOW)) == (401, "unknown_key")
    tampered = canonical_body({**body, "urgent": True})
    assert refused(provider.key.headers(raw, NOW), tampered) == (401, "bad_signature")
    stale = NOW - dt.timedelta(hours=1)
    assert refused(provider.key.headers(raw, stale)) == (401, "outside_time_window")
    with centre_db.read() as session:
        assert centre.list_reports(session) == []  # nothing refused was filed
    filed = _post(centre_url, provider, body)
    with centre_db.read() as session:
        stored = session.get(CentreReport, filed["id"])
        assert stored is not None and stored.signed_body == raw and stored.key_id == provider.key.key_id
        header = stored.signature
    # Kept so it can be shown later: the stored signature still proves the provider sent these bytes.
    proof = signing.signed_by(header, raw, centre.provider_keys(centre_db, "Platform S"))
    assert proof.key_id == provider.key.key_id and proof.sent_at == NOW


def test_the_platform_signs_the_eu_centre_report_and_waits_for_a_signing_key(
        db: Database, database_url: str, centre_db: Database, centre_url: str, fake_ncmec: FakeNcmec,
        tmp_path: Path) -> None:
    provider = _provider(centre_db, "Platform K")
    world = _platform(db, database_url, tmp_path, fake_ncmec, centre_url, provider.token)
    world.rep = services.Reporting(db, world.clock, world.rep.sealer,
                                   replace(world.rep.settings, orders_signing_key=""))
    world.sender = ReportSender(world.rep)
    world.known("k-1", "acct-a", seed=12)
    (report_id,) = services.draft_pending(world.rep)
    services.send(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1  # NCMEC
    assert world.deliver().retrying == 1  # unsigned, it is not sent: it waits for the key
    with world.rep.db.read() as session:
        eu = services.deliveries_of(session, report_id)[CentreName.EU_CENTRE]
        assert eu.state == "queued" and "BASTION_ORDERS_SIGNING_KEY" in eu.error
    world.rep = services.Reporting(db, world.clock, world.rep.sealer,
                                   replace(world.rep.settings, orders_signing_key=provider.key.to_text()))
    world.sender = ReportSender(world.rep)
    world.clock.advance(seconds=60)
    assert world.deliver().delivered == 1
    with world.rep.db.read() as session:
        eu = services.deliveries_of(session, report_id)[CentreName.EU_CENTRE]
        signature, document = eu.signature, eu.document.encode()
    assert eu.state == "finished" and eu.centre_status == "forwarded"
    keys = centre.provider_keys(centre_db, "Platform K")
    assert signing.signed_by(signature, document, keys).key_id == provider.key.key_id


def test_cli_registers_a_provider_with_its_key_and_creates_the_centres_admin_token(
        centre_db: Database, centre_url: str) -> None:
    env = {**os.environ, "BASTION_CENTRE_DATABASE_URL": centre_db.url, "CI": "true"}

    def bastion(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bastion", "centre", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    key = SigningKey.generate()
    bad = bastion("provider", "Platform Q", "--public-key", "not-a-key")
    assert bad.returncode == 1 and "not an Ed25519 public key" in bad.stderr and bad.stdout == ""
    registered = bastion("provider", "Platform Q", "--public-key", key.public_text)
    assert registered.returncode == 0, registered.stderr
    provider = Provider("Platform Q", registered.stdout.strip(), key)
    filed = _post(centre_url, provider, _body("r-1", [{"content_id": "1", "sha256": "4d" * 32}]))
    assert filed["status"] == "forwarded"
    assert bastion("token", "staff-1", "--role", "platform").returncode == 1
    admin = bastion("token", "staff-1", "--role", "admin")
    assert admin.returncode == 0, admin.stderr
    listed = httpx.get(f"{centre_url}/v1/centre/reports", headers={"Authorization": f"Bearer {admin.stdout.strip()}"})
    assert [r["id"] for r in listed.json()["reports"]] == [filed["id"]]


def test_reports_forwarded_before_the_upgrade_still_make_the_same_report_again_a_duplicate(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from alembic import command

    from bastion.core.db import UTCDateTime, alembic_config, migrate

    url = f"sqlite:///{tmp_path}/centre-0009.db"
    command.upgrade(alembic_config(url), "0009")
    old = Database(url)
    body = _body("r-1", [{"content_id": "1", "sha256": "6e" * 32, "md5": "7f" * 16}])
    columns = ("id", "provider", "provider_reference", "ncmec_report_id", "member_state", "urgent", "status",
               "reason", "duplicate_of", "forwarded_to")
    before = sa.table("centre_reports", *(sa.column(c) for c in columns), sa.column("body", sa.JSON()),
                      sa.column("received_at", UTCDateTime()))
    with old.write() as session:  # as the Centre filed it before 0010
        session.execute(before.insert().values(
            id="before", provider="token:1:P", provider_reference="r-1", ncmec_report_id="", member_state="DE",
            urgent=False, status="forwarded", reason="", duplicate_of="", forwarded_to="DE", body=body,
            received_at=NOW))
    old.dispose()
    migrate(url)
    db = Database(url)
    try:
        c = centre.Centre(db, FrozenClock(NOW), {"EUROPOL": "https://le.example/europol"})
        again = centre.receive(c, "token:1:P", {**body, "provider_reference": "r-2"})
        assert (again.status, again.duplicate_of) == ("duplicate", "before")
    finally:
        db.dispose()


def test_the_centres_openapi_document_names_each_answers_fields(centre_url: str) -> None:
    document = httpx.get(f"{centre_url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    received = document["paths"]["/v1/centre/reports"]["post"]["responses"]["201"]["content"]["application/json"]
    listed = document["paths"]["/v1/centre/reports"]["get"]["responses"]["200"]["content"]["application/json"]
    assert received["schema"]["$ref"].endswith("/ReceivedReport")
    assert listed["schema"]["$ref"].endswith("/ReceivedReports")
    assert set(schemas["ReceivedReport"]["properties"]) == {
        "id", "status", "reason", "duplicate_of", "forwarded_to", "urgent", "provider_reference", "received_at"}
    assert schemas["ReceivedReports"]["properties"]["reports"]["items"]["$ref"].endswith("/ReceivedReport")


def _flip(value: str, bits: int, offset: int = 0) -> str:
    n = int(value, 16)
    for i in range(bits):
        n ^= 1 << (i * 5 + offset)
    return f"{n:064x}"


def test_a_re_encoded_copy_is_a_duplicate_by_its_pdq_within_the_threshold(
        centre_db: Database, centre_url: str) -> None:
    """Same suspect, same provider: a file whose exact hashes are new but whose PDQ is within 31 bits of one
    already reported is the same material; at 32 bits (from every PDQ the suspect's reports carried), or for
    another suspect, it is a new lead."""
    token = _provider(centre_db, "Platform P")
    pdq = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    first = _post(centre_url, token, _body("p-1", [{"content_id": "1", "sha256": "a1" * 32, "pdq": pdq}]))
    assert first["status"] == "forwarded"
    copy = _post(centre_url, token, _body("p-2", [{"content_id": "2", "sha256": "b2" * 32, "pdq": _flip(pdq, 31)}]))
    assert (copy["status"], copy["duplicate_of"]) == ("duplicate", first["id"])
    # the copy's own hashes were claimed for the first report: its SHA-256 alone is now known too
    by_sha = _post(centre_url, token, _body("p-3", [{"content_id": "3", "sha256": "b2" * 32}]))
    assert (by_sha["status"], by_sha["duplicate_of"]) == ("duplicate", first["id"])
    other_picture = _post(centre_url, token, _body("p-4", [{"content_id": "4", "pdq": _flip(pdq, 32, 2)}]))
    assert other_picture["status"] == "forwarded"
    another_suspect = _post(centre_url, token, _body("p-5", [{"content_id": "5", "pdq": pdq}],
                                                     users=[{"account_id": "someone-else"}]))
    assert another_suspect["status"] == "forwarded"
    bad = _send(centre_url, token, _body("p-6", [{"content_id": "6", "pdq": "zz" * 32}]))
    assert bad.status_code == 422
