"""What every command shares: one-line errors, the acting admin, the database, progress bars."""

from __future__ import annotations

import errno
import getpass
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bastion.cli.app import err as err
from bastion.cli.app import print_error
from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.core.errors import DomainError

#: Every role, from the enum itself: help text never falls behind a new role.
ROLES = ", ".join(r.value for r in Role)
#: The options every server command takes.
HostOption = Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")]
PortOption = Annotated[int, typer.Option(help="TCP port to listen on")]

out = Console()
T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def cli_actor() -> auth.Principal:
    """Whoever runs the CLI on the server holds the database already: they act as an admin, named in the audit."""
    return auth.Principal("cli", 0, os.environ.get("BASTION_ACTOR") or getpass.getuser(), Role.ADMIN)


def open_db(url: str | None = None) -> Database:
    """The platform's database, or another (the hub's) when ``url`` is given; migrated to the current schema."""
    url = url or Settings.from_env().database_url
    try:
        migrate(url)
    except Exception as exc:
        fail(f"cannot open the database {_redact(url)}: {type(exc).__name__}: {exc}")
    return Database(url)


def _redact(url: str) -> str:
    """Never print a password from a database URL."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def guarded(fn: Callable[[], T]) -> T:
    """For a value a command checks before it starts (a role, a threshold): a refusal as one line."""
    try:
        return fn()
    except (DomainError, ValueError) as exc:
        fail(str(exc))


@contextmanager
def progress_bar(description: str, total: float | None, unit: str = "") -> Iterator[Callable[[float], None]]:
    columns = [TextColumn("[bold]{task.description}"), BarColumn(),
               MofNCompleteColumn() if unit != "bytes" else TextColumn("{task.percentage:>3.0f}%"),
               TimeRemainingColumn()]
    # Bars go to stderr, and only to a terminal: piped output and --json stay clean.
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: float) -> None:
            progress.update(task, advance=n)

        yield advance



def require_free_port(host: str, port: int) -> None:
    """Fail in one line, before anything starts, when ``host:port`` cannot be listened on (another server holds it,
    a port under 1024 without the right, an address this machine does not have), instead of uvicorn's trace."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing socket is no clash
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(f"port {port} on {host} is in use (another server?): stop it or choose another with --port")
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
