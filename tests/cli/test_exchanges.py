"""``bastion exchange add|list|fetch|status|feedback`` against the fake ThreatExchange, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
