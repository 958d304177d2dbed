"""Every command and every option says what it is for in --help; role lists come from the Role enum."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from bastion.cli import app
from bastion.core.auth.roles import Role


def _commands(command: Any, path: str = "bastion") -> Iterator[tuple[str, Any]]:
    """Every command under ``command``, groups included, with its full name."""
    yield path, command
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_command_option_and_argument_has_help() -> None:
    found = list(_commands(typer.main.get_command(app)))
    assert len(found) > 40 and "bastion bank export" in dict(found)  # the walk reaches every level
    missing: list[str] = []
    for path, command in found:
        if not (command.help or "").strip():
            missing.append(path)
        missing += [f"{path} {param.name}" for param in command.params
                    if param.name != "help" and not (getattr(param, "help", None) or "").strip()]
    assert missing == []


def test_role_options_list_every_role() -> None:
    runner = CliRunner()
    for args in (["token", "create", "--help"], ["user", "create", "--help"]):
        text = " ".join(runner.invoke(app, args, env={"COLUMNS": "200"}).output.split())
        assert all(role.value in text for role in Role), args
