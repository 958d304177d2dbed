"""The root ``bastion`` command; each domain's module adds its commands to it."""

import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from bastion.core import extensions
from bastion.core.errors import DomainError

err = Console(stderr=True, soft_wrap=True, highlight=False)


def print_error(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)  # "[ml]" is not markup


class Bastion(typer.Typer):
    """The CLI's one handler of domain errors: any refusal a command lets through is one line and exit 1."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except DomainError as exc:
            print_error(str(exc))
            sys.exit(1)


app = Bastion(help="Bastion: hash matching, moderation, removal orders and child-safety reporting.",
              no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _start() -> None:
    # Every command sees the signal types and classifier kinds extensions add (BASTION_EXTENSIONS, entry points);
    # a broken extension stops it, in one line (ExtensionError is a DomainError).
    extensions.activate(extensions.names_from(os.environ.get(extensions.SETTING)))
