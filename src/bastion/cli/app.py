"""The root ``bastion`` command; each domain's module adds its commands to it."""

import os

import typer

from bastion import extensions
from bastion.cli.common import fail

app = typer.Typer(help="Bastion: hash matching, moderation, removal orders and child-safety reporting.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _start() -> None:
    # Every command sees the signal types and classifier kinds extensions add; a broken one stops it in one line.
    try:
        extensions.activate(extensions.names_from(os.environ.get(extensions.SETTING)))
    except extensions.ExtensionError as exc:
        fail(str(exc))
