"""bastion minors: a rules file checked before it goes live (the floor included), and "what can A do to B?"."""

from __future__ import annotations

from pathlib import Path

from bastion.core.clock import SystemClock
from bastion.core.db import Database
from bastion.minors import ages
from bastion.minors.interfaces import AgeBasis
from bastion.minors.models import MinorEvent
from bastion.minors.rules import DEFAULT_RULES_PATH, RulesFile
from bastion.minors.services import Minors
from tests.test_cli import bastion


def test_check_rules_passes_the_default_and_names_a_floor_breach(db: Database, tmp_path: Path) -> None:
    r = bastion(db, "minors", "check-rules")
    assert r.returncode == 0, r.stderr
    assert "bastion-default" in r.stderr and "the floor holds" in r.stderr
    broken = tmp_path / "platform.toml"
    broken.write_text(DEFAULT_RULES_PATH.read_text().replace(
        "[grooming]", '[[rules]]\nid = "open-dms"\nactions = ["dm"]\ndecision = "allow"\nexplanation = "x"\n\n'
        "[grooming]"))
    r = bastion(db, "minors", "check-rules", str(broken))
    assert r.returncode == 1
    assert "(open-dms) would allow what Bastion's floor forbids" in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr


def test_ask_answers_every_action_and_records_nothing(db: Database) -> None:
    m = Minors(db, SystemClock(), RulesFile(DEFAULT_RULES_PATH))
    ages.record_age(m, "teen", ages.Age(AgeBasis.VERIFIED, 14, method="eu-age-app"), actor="test")
    r = bastion(db, "minors", "ask", "stranger", "teen", "--actor-age", "30")
    assert r.returncode == 0, r.stderr
    assert "stranger is 18_plus, teen is 13_15" in r.stderr
    dm_line = next(line for line in r.stdout.splitlines() if " dm " in f" {line} ")
    assert "deny" in dm_line and "floor-adult-dm-unconnected-under-16" in dm_line
    with db.read() as session:
        assert session.query(MinorEvent).filter(MinorEvent.kind == "interaction.denied").count() == 0
    bad = bastion(db, "minors", "ask", "a", "b", "--actor-age", "200")
    assert bad.returncode == 1 and bad.stderr.strip() == "error: an age is between 0 and 130 years"
