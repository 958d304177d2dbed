"""``bastion transparency backfill``, ``statements`` and ``submit`` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bastion.core.db import Database
from tests.transparency.conftest import SRC, TOKEN, AddStatements, Fake


def _bastion(db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(SRC), "BASTION_DATABASE_URL": db.url, "CI": "true", **env}
    return subprocess.run([sys.executable, "-m", "bastion", "transparency", *args], env=full, capture_output=True,
                          text=True, timeout=120)


def test_backfill_then_submit_then_status(db: Database, fake: Fake, add_statements: AddStatements) -> None:
    puids = add_statements(120)
    bad = add_statements(1, prefix="bad", territorial_scope=["US"])
    first = _bastion(db, "backfill")
    assert first.returncode == 0, first.stderr
    assert "121 statements queued of 121 (0 were queued already)" in first.stderr
    assert "0 statements queued of 121" in _bastion(db, "backfill").stderr
    refused = _bastion(db, "submit", "--until-empty")
    assert "set BASTION_TRANSPARENCY_DB_URL" in refused.stderr and refused.returncode == 1
    sent = _bastion(db, "submit", "--until-empty", BASTION_TRANSPARENCY_DB_URL=fake.url,
                    BASTION_TRANSPARENCY_DB_TOKEN=TOKEN)
    assert sent.returncode == 0 and "120 statements accepted" in sent.stderr, sent.stderr
    assert fake.receipts()["created"] == {**dict.fromkeys(puids, 1), bad[0]: 0}  # received, refused, not created
    listed = _bastion(db, "statements", "--state", "rejected", "--json")
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert body["counts"] == {"queued": 0, "sending": 0, "accepted": 120, "rejected": 1}
    assert [(i["puid"], i["errors"]) for i in body["items"]] == [
        (bad[0], {"territorial_scope": ["must be EU/EEA ISO 3166-1 alpha-2 codes"]})]
    table = _bastion(db, "statements", "--state", "rejected")
    assert "territorial_scope" in table.stdout and "accepted: 120" in table.stdout
    wrong = _bastion(db, "statements", "--state", "lost")
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: unknown state 'lost'")
