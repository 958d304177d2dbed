"""The README's commands name commands and options that exist: a renamed option breaks this, not a reader's first
hour. (Running the commands themselves is for CI's README check and the other CLI tests.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from bastion.cli import app

README = Path(__file__).parents[2] / "README.md"
#: ``bastion ...`` up to where the shell command ends (a pipe, ``&``, ``;``, a closing ``$(``, a comment, a line).
COMMAND = re.compile(r"(?<![\w/.-])bastion((?:[ \t]+(?:\"[^\"]*\"|'[^']*'|[^\s)&;|#\"'<>]+))*)")


def _commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    # matched at every "bastion", so that one inside another's "$(...)" is checked too
    found = (COMMAND.match(text, at.start()) for at in re.finditer("bastion", text))
    return [shlex.split(m.group(1)) for m in found if m]


def _problem(words: list[str]) -> str | None:
    command: TyperCommand | TyperGroup = typer.main.get_command(app)  # type: ignore[assignment]
    path = ["bastion"]
    while isinstance(command, TyperGroup) and words and not words[0].startswith("-"):
        sub = command.commands.get(words[0])
        if sub is None:
            return f"{' '.join(path)} has no command {words[0]!r}"
        command, path, words = sub, [*path, words[0]], words[1:]  # type: ignore[assignment]
    if isinstance(command, TyperGroup):
        return f"{' '.join(path)} needs a command"
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [w.split("=")[0] for w in words if w.startswith("-") and w.split("=")[0] not in options]
    return f"{' '.join(path)} has no option {unknown[0]}" if unknown else None


def test_every_command_in_the_readme_exists_with_its_options() -> None:
    commands = _commands()
    assert len(commands) > 20  # the pattern still finds them
    assert [p for p in map(_problem, commands) if p] == []
