"""Commands for API tokens and console users."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import ROLES, cli_actor, err, fail, guarded, open_db, out
from bastion.core.auth import services as auth
from bastion.core.auth.roles import parse_role
from bastion.core.config import Settings

token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")


@token_app.command("create")
def token_create(role: Annotated[str, typer.Option(help=f"one of: {ROLES}")],
                 name: Annotated[str, typer.Option(help="what the token is for")] = "") -> None:
    """Create an API token and print it alone on standard output (shown once; stored hashed)."""
    parsed = guarded(lambda: parse_role(role))
    db = open_db()
    token = auth.create_token(db, role=parsed, name=name or f"{parsed.value} token", actor=cli_actor().actor)
    print(token)


@token_app.command("list")
def token_list() -> None:
    """Every token: id, name, role, who made it and when, and whether it is revoked (never the token itself)."""
    db = open_db()
    table = Table("id", "name", "role", "created", "by", "revoked")
    with db.read() as session:
        for t in auth.list_tokens(session):
            table.add_row(str(t.id), t.name, t.role, f"{t.created_at:%Y-%m-%d %H:%M}", t.created_by,
                          f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="the id from bastion token list")]) -> None:
    """Revoke a token: running servers refuse it within a second (their token checks are cached for 1 s; the row
    stays, for the audit)."""
    db = open_db()
    if not auth.revoke_token(db, token_id, actor=cli_actor().actor):
        fail(f"no active token {token_id}")
    err.print(f"token {token_id} revoked")


@user_app.command("create")
def user_create(username: Annotated[str, typer.Argument(help="the login name")],
                role: Annotated[str, typer.Option(help=f"one of: {ROLES}")],
                password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
                hub: Annotated[bool, typer.Option("--hub", help="a user of the hub's console "
                                                  "(BASTION_HUB_DATABASE_URL)")] = False) -> None:
    """Create a console user; the password is prompted for (or read from stdin), never taken as an argument."""
    parsed = guarded(lambda: parse_role(role))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            fail("passwords differ")
    db = open_db(Settings.from_env().hub_database_url if hub else None)
    guarded(lambda: auth.create_user(db, username=username, password=password, role=parsed,
                                     actor=cli_actor().actor))
    err.print(f"user {username} created with role {parsed.value}")


