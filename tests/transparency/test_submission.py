"""Statements of reasons to a fake Transparency Database over real HTTP: batches of 100, per-statement outcomes,
retries, and no statement lost or doubled when either side dies mid-batch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.minors.models import MinorsCase
from bastion.transparency import submission
from bastion.transparency.sor_client import BatchAnswer, TransparencyClient, Unanswered
from bastion.transparency.sor_models import SorEvent, SorSubmission
from bastion.transparency.sor_states import SorEventKind, SubmissionState
from bastion.web.app import create_app
from tests.transparency.conftest import SRC, TOKEN, AddStatements, Fake, fake_process, free_port

START = dt.datetime(2026, 12, 2, 9, tzinfo=dt.UTC)


def _submitter(db: Database, url: str, clock: FrozenClock, **kw: object) -> submission.Submitter:
    return submission.Submitter(db, TransparencyClient(url, TOKEN, timeout=60), clock, **kw)  # type: ignore[arg-type]


def _states(db: Database) -> dict[str, str]:
    with db.read() as session:
        return {puid: state for puid, state in session.execute(select(SorSubmission.puid, SorSubmission.state))}


def _drain(sub: submission.Submitter, rounds: int = 50) -> None:
    for _ in range(rounds):
        if sub.round().claimed == 0:
            return
    raise AssertionError("the queue did not drain")


def test_every_statement_is_sent_once_in_batches_of_100(db: Database, fake: Fake,
                                                        add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    puids = add_statements(250)
    assert submission.backfill(db, clock=clock) == 250
    sub = _submitter(db, fake.url, clock)
    claimed = [sub.round().claimed for _ in range(4)]
    assert claimed == [100, 100, 50, 0]
    assert set(_states(db).values()) == {"accepted"}
    receipts = fake.receipts()
    assert receipts["received"] == dict.fromkeys(puids, 1) and receipts["created"] == dict.fromkeys(puids, 1)
    with db.read() as session:
        kinds = [e.kind for e in session.scalars(select(SorEvent).where(SorEvent.subject == f"sor:{puids[0]}")
                                                 .order_by(SorEvent.id))]
        row = session.get(SorSubmission, puids[0])
        assert row is not None and row.uuid
    assert kinds == [SorEventKind.QUEUED.value, SorEventKind.ACCEPTED.value]
    stored = httpx.get(f"{fake.url}/api/v1/statement/{row.uuid}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert stored.json()["puid"] == puids[0]
    # a second backfill queues nothing and nothing is sent again
    assert submission.backfill(db, clock=clock) == 0 and sub.round().claimed == 0


def test_no_account_id_reaches_the_database(db: Database, fake: Fake, add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    add_statements(3, account_id="user-991", facts="Posted by user-991 (user991@mail.example) again.")
    submission.backfill(db, clock=clock)
    _drain(_submitter(db, fake.url, clock))
    assert set(_states(db).values()) == {"accepted"}
    for puid in ("sor-000000", "sor-000002"):
        with db.read() as session:
            row = session.get(SorSubmission, puid)
        assert row is not None
        body = httpx.get(f"{fake.url}/api/v1/statement/{row.uuid}",
                         headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert "user-991" not in str(body) and "user991@" not in str(body)
        assert body["decision_facts"] == "Posted by [redacted] ([redacted]) again."


def test_a_refused_statement_keeps_its_errors_and_the_rest_of_its_batch_goes(
        db: Database, fake: Fake, add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    good = add_statements(5)
    bad = add_statements(1, prefix="bad", territorial_scope=["US"])  # passes our rules, not the database's
    local = add_statements(1, prefix="nofacts", decision_facts="")  # refused here: never sent
    submission.backfill(db, clock=clock)
    sub = _submitter(db, fake.url, clock)
    first = sub.round()
    assert (first.claimed, first.rejected, first.requeued) == (7, 2, 5)
    _drain(sub)
    states = _states(db)
    assert [states[p] for p in good] == ["accepted"] * 5
    assert states[bad[0]] == states[local[0]] == "rejected"
    with db.read() as session:
        refused = {v.puid: v.errors for v in submission.listing(session, state=SubmissionState.REJECTED)}
    assert refused[bad[0]] == {"territorial_scope": ["must be EU/EEA ISO 3166-1 alpha-2 codes"]}
    assert refused[local[0]] == {"statement": ["decision_facts is required"]}
    assert local[0] not in fake.receipts()["received"]


def test_a_database_that_is_down_is_retried_with_back_off(db: Database, tmp_path: Path,
                                                          add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    puids = add_statements(30)
    submission.backfill(db, clock=clock)
    port = free_port()
    sub = _submitter(db, f"http://127.0.0.1:{port}", clock)
    report = sub.round()
    assert (report.claimed, report.retrying) == (30, 30) and "no answer" in (report.error or "")
    assert sub.round().claimed == 0  # waiting out its back-off
    with db.read() as session:
        row = session.get(SorSubmission, puids[0])
    assert row is not None and (row.state, row.attempts) == ("queued", 1) and row.last_error
    with fake_process(tmp_path / "fake.db", port):
        clock.advance(seconds=5)
        _drain(sub)
    assert set(_states(db).values()) == {"accepted"}


def test_a_wrong_token_is_retried_not_rejected(db: Database, fake: Fake, add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    add_statements(2)
    submission.backfill(db, clock=clock)
    sub = submission.Submitter(db, TransparencyClient(fake.url, "wrong"), clock)
    assert "refused the token" in (sub.round().error or "")
    assert set(_states(db).values()) == {"queued"}


class _CrashAfterSending:
    """The submitter's process dies after the database stored the batch and before the answer is written."""

    def __init__(self, api: TransparencyClient) -> None:
        self.api = api

    def submit(self, statements: Sequence[dict[str, object]]) -> BatchAnswer:
        self.api.submit(statements)
        raise SystemExit("killed")

    def known(self, puid: str) -> str | None:
        return self.api.known(puid)


class _CannotTell(_CrashAfterSending):
    """A database whose ``existing-puid`` look-up does not answer: the batch's ``existing`` answer must do."""

    def submit(self, statements: Sequence[dict[str, object]]) -> BatchAnswer:
        return self.api.submit(statements)

    def known(self, puid: str) -> str | None:
        raise Unanswered("HTTP 503")


def _crash_first_batch(db: Database, fake: Fake, clock: FrozenClock) -> None:
    dying = submission.Submitter(db, _CrashAfterSending(TransparencyClient(fake.url, TOKEN)), clock)
    with pytest.raises(SystemExit):
        dying.round()
    assert list(_states(db).values()).count("sending") == 100
    clock.advance(seconds=submission.DEFAULT_LEASE_SECONDS + 1)  # its lease runs out; another deliverer takes over


def _existing_events(db: Database) -> int:
    with db.read() as session:
        return len(list(session.scalars(select(SorEvent.subject).where(SorEvent.kind == SorEventKind.EXISTING.value))))


def test_a_submitter_dying_after_sending_sends_nothing_twice(db: Database, fake: Fake,
                                                             add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    puids = add_statements(150)
    submission.backfill(db, clock=clock)
    _crash_first_batch(db, fake, clock)
    _drain(_submitter(db, fake.url, clock))
    assert set(_states(db).values()) == {"accepted"} and _existing_events(db) == 100
    receipts = fake.receipts()
    # the first 100 were looked up (existing-puid), found, and not sent again
    assert receipts["received"] == receipts["created"] == dict.fromkeys(puids, 1)


def test_when_the_look_up_cannot_tell_the_database_s_existing_answer_keeps_them_single(
        db: Database, fake: Fake, add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    puids = add_statements(150)
    submission.backfill(db, clock=clock)
    _crash_first_batch(db, fake, clock)
    _drain(submission.Submitter(db, _CannotTell(TransparencyClient(fake.url, TOKEN)), clock))
    assert set(_states(db).values()) == {"accepted"} and _existing_events(db) == 100
    receipts = fake.receipts()
    assert receipts["created"] == dict.fromkeys(puids, 1)  # none doubled
    assert sorted(set(receipts["received"].values())) == [1, 2]  # the first 100 were sent again, answered existing


def test_a_submitter_process_killed_mid_batch_loses_and_doubles_nothing(
        db: Database, database_url: str, tmp_path: Path, add_statements: AddStatements) -> None:
    puids = add_statements(220)
    submission.backfill(db, clock=FrozenClock(START))
    port = free_port()
    fake = Fake(f"http://127.0.0.1:{port}")
    with fake_process(tmp_path / "fake.db", port, "--stall-after-store", "1", "--stall-seconds", "60"):
        env = {**os.environ, "PYTHONPATH": str(SRC), "BASTION_DATABASE_URL": database_url,
               "BASTION_TRANSPARENCY_DB_URL": fake.url, "BASTION_TRANSPARENCY_DB_TOKEN": TOKEN}
        worker = subprocess.Popen([sys.executable, "-m", "bastion", "transparency", "submit"], env=env)
        try:
            deadline = time.monotonic() + 60
            while sum(fake.receipts()["created"].values()) < 100:  # the first batch is stored, its answer stalls
                assert time.monotonic() < deadline and worker.poll() is None
                time.sleep(0.05)
        finally:
            worker.kill()
            worker.wait(10)
        assert list(_states(db).values()).count("sending") == 100
        later = FrozenClock(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        _drain(_submitter(db, fake.url, later))
        receipts = fake.receipts()
    assert set(_states(db).values()) == {"accepted"}
    assert receipts["created"] == receipts["received"] == dict.fromkeys(puids, 1)


def test_the_database_dying_mid_batch_loses_and_doubles_nothing(db: Database, tmp_path: Path,
                                                                add_statements: AddStatements) -> None:
    clock = FrozenClock(START)
    puids = add_statements(200)
    submission.backfill(db, clock=clock)
    port, store = free_port(), tmp_path / "fake.db"
    sub = _submitter(db, f"http://127.0.0.1:{port}", clock)
    with fake_process(store, port, "--die-after-store", "2") as process:
        assert sub.round().accepted == 100
        died = sub.round()  # stored, then the database died before answering
        assert died.retrying == 100 and died.error
        assert process.wait(10) == 3
    with fake_process(store, port):
        clock.advance(seconds=30)
        _drain(sub)
        receipts = Fake(f"http://127.0.0.1:{port}").receipts()
    assert set(_states(db).values()) == {"accepted"}
    assert receipts["created"] == receipts["received"] == dict.fromkeys(puids, 1)
    with db.read() as session:
        assert len(submission.listing(session, state=SubmissionState.ACCEPTED, limit=500)) == 200


def test_an_under_13_removal_is_submitted_once_confirmed_naming_no_one(
        db: Database, fake: Fake, settings: Settings, auth_header: Callable[[Role], dict[str, str]]) -> None:
    configured = dataclasses.replace(settings, transparency_db_url=fake.url, transparency_db_token=TOKEN,
                                     transparency_submitters=0)  # drained here, not by the app's workers
    platform, specialist = auth_header(Role.PLATFORM), auth_header(Role.CHILD_SAFETY)
    with TestClient(create_app(configured, db=db, refresh=False)) as api:
        for account in ("kid-4711", "kid-4712"):
            assert api.put(f"/v1/accounts/{account}/age", json={"years": 11.5}, headers=platform).status_code == 200
        cases = {c["account_id"]: c for c in api.get("/v1/minors/cases", headers=specialist).json()}
        assert _states(db) == {}  # drafted only: no restriction yet, nothing owed to the database
        with db.write() as session:  # drafted by an older build, whose wording said the age
            case = session.get(MinorsCase, cases["kid-4711"]["id"])
            assert case is not None and case.statement is not None
            old = "The account's age is recorded as 11.5 years (declared)."
            case.statement = {**case.statement, "decision_facts": old, "incompatible_content_explanation": old}
        for account, confirmed in (("kid-4711", True), ("kid-4712", False)):
            decided = api.post(f"/v1/minors/cases/{cases[account]['id']}/decision", json={"confirmed": confirmed},
                               headers=specialist)
            assert decided.status_code == 200, decided.text
    issued = cases["kid-4711"]["statement"]["puid"]
    assert _states(db) == {issued: "queued"}  # the dismissed case restricted no one
    later = FrozenClock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))  # the app queued it on the real clock
    assert submission.backfill(db, clock=later) == 0  # already queued with the decision
    _drain(_submitter(db, fake.url, later))
    assert _states(db) == {issued: "accepted"}
    with db.read() as session:
        row = session.get(SorSubmission, issued)
    assert row is not None
    body = httpx.get(f"{fake.url}/api/v1/statement/{row.uuid}", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert body["decision_account"] == "DECISION_ACCOUNT_TERMINATED"
    assert body["category_specification"] == ["KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS"]
    assert "kid-4711" not in str(body) and "11.5" not in str(body) and "11 " not in str(body)


def test_the_backfill_queues_under_13_statements_issued_before_submission(
        db: Database, fake: Fake, settings: Settings, auth_header: Callable[[Role], dict[str, str]],
        add_statements: AddStatements) -> None:
    specialist = auth_header(Role.CHILD_SAFETY)
    with TestClient(create_app(settings, db=db, refresh=False)) as api:  # submission not switched on
        api.put("/v1/accounts/kid-9/age", json={"years": 10}, headers=auth_header(Role.PLATFORM))
        (case,) = api.get("/v1/minors/cases", headers=specialist).json()
        api.post(f"/v1/minors/cases/{case['id']}/decision", json={"confirmed": True}, headers=specialist)
    moderation = add_statements(2)
    assert _states(db) == {}
    assert submission.backfill(db, clock=FrozenClock(START), page=1) == 3
    _drain(_submitter(db, fake.url, FrozenClock(START)))
    assert _states(db) == dict.fromkeys([*moderation, case["statement"]["puid"]], "accepted")
