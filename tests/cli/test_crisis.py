"""``bastion crisis``: activate with a file of known material, list, deactivate; bad input is one line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bastion.cli import app
from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.exchanges import services as exchanges
from bastion.exchanges.interfaces import ExchangeKind
from bastion.feed.models import Crisis
from bastion.matching import services as banks
from bastion.matching.models import Bank, BankEntry
from tests.factories.media import make_image


def test_activate_list_deactivate(db: Database, database_url: str, tmp_path: Path) -> None:
    runner, env = CliRunner(), {"BASTION_DATABASE_URL": database_url, "COLUMNS": "200"}
    image = make_image(tmp_path / "attack.jpg", seed=91, size=(320, 240))
    r = runner.invoke(app, ["crisis", "activate", "ECP-2026-03", "--protocol", "eu_crisis_protocol", "--country",
                            "FR", "--country", "BE", "--material", str(image)], env=env)
    assert r.exit_code == 0, r.output
    with db.read() as session:
        crisis = session.query(Crisis).one()
        assert (crisis.state, crisis.countries, crisis.bank) == ("active", ["BE", "FR"], "CRISIS_ECP_2026_03")
        assert session.query(BankEntry).count() >= 6  # the file's hashes and its border crops
    listed = runner.invoke(app, ["crisis", "list", "--active"], env=env)
    assert "ECP-2026-03" in listed.output and "active" in listed.output
    assert runner.invoke(app, ["crisis", "deactivate", str(crisis.id), "--note", "over"], env=env).exit_code == 0
    again = runner.invoke(app, ["crisis", "deactivate", str(crisis.id)], env=env)
    assert again.exit_code == 1 and "cannot deactivate a crisis that is ended" in again.output


def test_bad_input_is_one_line_and_changes_nothing(db: Database, database_url: str) -> None:
    runner, env = CliRunner(), {"BASTION_DATABASE_URL": database_url}
    for args in (["crisis", "activate", "X", "--protocol", "nope"], ["crisis", "activate", "X", "--country", "XX"],
                 ["crisis", "activate", "X", "--protocol", "gifct_cip"], ["crisis", "deactivate", "99"]):
        r = runner.invoke(app, args, env=env)
        assert r.exit_code == 1, (args, r.output)
    with db.read() as session:
        assert session.query(Crisis).count() == 0


def test_activate_shares_with_an_exchange_and_refuses_one_that_takes_nothing(db: Database, database_url: str,
                                                                             admin: Principal) -> None:
    banks.create_bank(db, "TERROR", actor=admin)
    exchanges.add_exchange(db, exchanges.NewExchange("te", ExchangeKind.THREATEXCHANGE, "TERROR",
                                                     settings={"privacy_group": "303"}), actor=admin)
    exchanges.add_exchange(db, exchanges.NewExchange("tat", ExchangeKind.TAT, "TERROR"), actor=admin)
    runner, env = CliRunner(), {"BASTION_DATABASE_URL": database_url, "COLUMNS": "200"}
    refused = runner.invoke(app, ["crisis", "activate", "ECP-5", "--country", "FR", "--share-with", "tat"], env=env)
    assert refused.exit_code == 1 and "takes no shared hashes" in refused.output
    with db.read() as session:
        assert session.query(Crisis).count() == 0 and session.query(Bank).filter_by(name="CRISIS_ECP_5").count() == 0
    r = runner.invoke(app, ["crisis", "activate", "ECP-5", "--country", "FR", "--share-with", "te"], env=env)
    assert r.exit_code == 0 and "shared with te" in r.output, r.output
    with db.read() as session:
        assert session.query(Crisis).one().share_with == ["te"]
