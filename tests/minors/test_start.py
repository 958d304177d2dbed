"""Fail closed: a minors rules file that does not load stops the platform from starting, as a broken policy does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.minors.interfaces import RulesError
from bastion.web.app import create_app


def test_a_broken_rules_file_refuses_the_start(settings: Settings, db: Database, tmp_path: Path) -> None:
    broken = tmp_path / "minors.toml"
    broken.write_text("[[rules]]\nname = 'let-adults-dm-children'\n")
    with pytest.raises(RulesError):
        create_app(replace(settings, minors_rules_path=broken), db=db, refresh=False)
