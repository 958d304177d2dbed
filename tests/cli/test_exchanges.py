"""``bastion exchange add|list|fetch|status|feedback`` against the fake ThreatExchange, as an operator runs them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.matching import services as banks
from tests.factories.exchanges import TE_GROUP, TE_TOKEN, FakeThreatExchange
from tests.factories.exchanges import threatexchange as threatexchange


def bastion(db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bastion", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BASTION_DATABASE_URL": db.url, "CI": "true", **env})


def test_an_operator_adds_fetches_and_reads_an_exchange(db: Database, admin: Principal,
                                                        threatexchange: FakeThreatExchange) -> None:
    banks.create_bank(db, "TERROR", actor=admin)
    for n in range(1, 4):
        threatexchange.put(n, f"{n:x}" * 64, time=1_760_000_000 + n)
    r = bastion(db, "exchange", "add", "te", "--kind", "fb_threatexchange", "--bank", "TERROR",
                "--setting", f"privacy_group={TE_GROUP}", "--setting", f"base_url={threatexchange.url}",
                "--credentials-env", "TEST_TE_TOKEN", "--category", "terrorism")
    assert r.returncode == 0, r.stderr
    assert "credentials from $TEST_TE_TOKEN" in r.stderr
    r = bastion(db, "exchange", "fetch", "te", TEST_TE_TOKEN=TE_TOKEN)
    assert r.returncode == 0, r.stderr
    assert "te: 2 page(s), 3 record(s): 3 entries added, 0 removed, 0 skipped" in r.stderr
    r = bastion(db, "exchange", "list", "--json")
    [status] = [json.loads(line) for line in r.stdout.splitlines()]
    assert (status["name"], status["entries"], status["records_fetched"]) == ("te", 3, 3)
    r = bastion(db, "exchange", "status", "te", TEST_TE_TOKEN=TE_TOKEN)
    assert "credentials_present: True" in r.stdout and TE_TOKEN not in r.stdout + r.stderr
    r = bastion(db, "exchange", "feedback", "1", "seen")
    assert r.returncode == 0 and "seen queued for te" in r.stderr


def test_bad_input_is_one_line_and_changes_nothing(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "TERROR", actor=admin)
    for args, message in (
            (("exchange", "fetch", "nope"), "error: no exchange named 'nope'"),
            (("exchange", "add", "te", "--kind", "fb_threatexchange", "--bank", "TERROR", "--setting", "junk"),
             "error: --setting takes KEY=VALUE, e.g. privacy_group=1234, got 'junk'"),
            (("exchange", "add", "te", "--kind", "fb_threatexchange", "--bank", "TERROR"),
             "error: fb_threatexchange needs the setting privacy_group"),
            (("exchange", "add", "n", "--kind", "ncmec", "--bank", "TERROR"),
             "error: exchange names are 2-64 letters, digits, _ and -, starting with a letter")):
        r = bastion(db, *args)
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [message], r.stderr
    assert bastion(db, "exchange", "list", "--json").stdout == ""


def test_a_fetch_killed_between_pages_resumes_without_loss_or_duplicates(db: Database, admin: Principal,
                                                                          threatexchange: FakeThreatExchange) -> None:
    """``kill -9`` of the fetching process while it waits for a page: the pages it committed stay with their
    checkpoint; the next fetch takes the rest, and nothing is banked twice."""
    from sqlalchemy import func, select

    from bastion.exchanges import services
    from bastion.exchanges.interfaces import ExchangeKind
    from bastion.matching.models import BankEntry, EntryOrigin

    banks.create_bank(db, "TERROR", actor=admin)
    for n in range(1, 6):
        threatexchange.put(n, hashlib.sha256(str(n).encode()).hexdigest(), time=1_760_000_000 + n)
    services.add_exchange(db, services.NewExchange(
        "te", ExchangeKind.THREATEXCHANGE, "TERROR",
        settings={"privacy_group": TE_GROUP, "base_url": threatexchange.url}, credentials_env="TEST_TE_TOKEN"),
        actor=admin)
    threatexchange.hold_after = 2  # the third page waits
    process = subprocess.Popen([sys.executable, "-m", "bastion", "exchange", "fetch", "te"],
                               env={**os.environ, "BASTION_DATABASE_URL": db.url, "TEST_TE_TOKEN": TE_TOKEN},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(threatexchange.script.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(threatexchange.script.calls) == 3
    finally:
        process.kill()
        process.wait(10)
    threatexchange.gate.set()
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(BankEntry)) == 4  # two pages of two committed
    status = services.exchange_status(db, "te", admin, {})
    assert status.progress == 1_760_000_004
    result = services.fetch(db, "te", actor=admin, env={"TEST_TE_TOKEN": TE_TOKEN})
    assert result.added == 1
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(BankEntry)) == 5
        assert session.scalar(select(func.count()).select_from(EntryOrigin)) == 5
