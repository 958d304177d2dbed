"""The CLI, run as a user would (a subprocess): partners and designated entities, refusals in one line."""

from __future__ import annotations

import json

from bastion.core import signing
from bastion.core.db import Database
from tests.test_cli import bastion


def test_partner_add_and_list(db: Database) -> None:
    key = signing.SigningKey.generate()
    added = bastion(db, "factcheck", "partner", "add", "checkers-eu", "--key", key.public_text,
                    "--url", "https://checkers.example/in")
    assert added.returncode == 0, added.stderr
    assert key.key_id in added.stderr
    again = bastion(db, "factcheck", "partner", "add", "other", "--key", key.public_text, "--url", "https://x.example")
    assert again.returncode == 1 and "already another partner's" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    bad = bastion(db, "factcheck", "partner", "add", "x", "--key", "nope", "--url", "https://x.example")
    assert bad.returncode == 1 and "Ed25519" in bad.stderr
    disabled = bastion(db, "factcheck", "partner", "disable", "checkers-eu")
    assert disabled.returncode == 0 and "no longer accepted" in disabled.stderr, disabled.stderr
    listed = bastion(db, "factcheck", "partner", "list", "--json")
    assert [(p["name"], p["enabled"]) for p in json.loads(listed.stdout)] == [("checkers-eu", False)]


def test_designation_add_list_change_confirm(db: Database) -> None:
    added = bastion(db, "designation", "add", "Black Banner Front", "--body", "EU Council", "--date", "2026-03-01",
                    "--category", "hate_speech", "--alias", "BBF")
    assert added.returncode == 0, added.stderr
    bad = bastion(db, "designation", "add", "X", "--body", "EU", "--date", "2026-03-01", "--category", "spam")
    assert bad.returncode == 1 and "unknown category 'spam'" in bad.stderr
    changed = bastion(db, "designation", "change", "Black Banner Front", "--category", "violent_extremism")
    assert changed.returncode == 0, changed.stderr
    assert "hate_speech -> violent_extremism" in changed.stderr and "nothing applied yet" in changed.stderr
    listed = json.loads(bastion(db, "designation", "list", "--json").stdout)
    assert [(e["name"], e["category"]) for e in listed] == [("Black Banner Front", "hate_speech")]
    own = bastion(db, "designation", "confirm", "1")  # four eyes: not by whoever proposed it
    assert own.returncode == 1 and "another person" in own.stderr, own.stderr
    confirmed = bastion(db, "designation", "confirm", "1", actor="second-officer")
    assert confirmed.returncode == 0 and "change 1 applied" in confirmed.stderr, confirmed.stderr
    assert bastion(db, "designation", "confirm", "1", actor="second-officer").returncode == 1
    listed = json.loads(bastion(db, "designation", "list", "--json").stdout)
    assert listed[0]["category"] == "violent_extremism"
    edited = bastion(db, "designation", "edit", "Black Banner Front", "--keyword", "Banner Boys")
    assert edited.returncode == 0 and "keywords: none -> Banner Boys" in edited.stderr, edited.stderr
    assert "another person confirms with `bastion designation confirm 2`" in edited.stderr
    assert bastion(db, "designation", "confirm", "2").returncode == 1  # four eyes for links too
    applied = bastion(db, "designation", "confirm", "2", actor="second-officer")
    assert applied.returncode == 0 and "keywords Banner Boys" in applied.stderr, applied.stderr
    proposed = bastion(db, "designation", "delist", "Black Banner Front", "--date", "2026-12-01", "--note", "revoked")
    assert proposed.returncode == 0 and "delist from 2026-12-01" in proposed.stderr, proposed.stderr
    assert json.loads(bastion(db, "designation", "list", "--json").stdout)[0]["delisted_on"] is None
    delisted = bastion(db, "designation", "confirm", "3", actor="second-officer")
    assert delisted.returncode == 0 and "delisted on 2026-12-01" in delisted.stderr, delisted.stderr
    assert json.loads(bastion(db, "designation", "list", "--json").stdout)[0]["delisted_on"] == "2026-12-01"
