"""The root ``bastion`` command; each domain's module adds its commands to it."""

import typer

app = typer.Typer(help="Bastion: hash matching, moderation, removal orders and child-safety reporting.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
