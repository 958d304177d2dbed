"""Commands for child-safety reports (NCMEC, EU Centre) and for running the EU Centre."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import (
    HostOption,
    PortOption,
    cli_actor,
    err,
    fail,
    guarded,
    open_db,
    out,
    progress_bar,
    require_free_port,
)
from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.reporting import services as reports

reports_app = typer.Typer(help="Child-safety reports to NCMEC and the EU Centre.", no_args_is_help=True)
centre_app = typer.Typer(help="The EU Centre: receives providers' reports, forwards them to law enforcement.",
                         no_args_is_help=True)
app.add_typer(reports_app, name="reports")
app.add_typer(centre_app, name="centre")


def _reporting() -> reports.Reporting:
    from bastion.core.clock import SystemClock

    settings = Settings.from_env()
    return reports.Reporting(open_db(settings.database_url), SystemClock(), settings.media_sealer(), settings)


@reports_app.command("draft")
def reports_draft() -> None:
    """Draft reports for confirmed material not yet reported (one per offending account)."""
    drafted = reports.draft_pending(_reporting())
    err.print(f"{len(drafted)} report(s) drafted or extended")
    for report_id in drafted:
        print(report_id)


@reports_app.command("list")
def reports_list(state: Annotated[str | None, typer.Option(help="draft, queued, submitted, finished, failed, "
                                                                 "retracted")] = None) -> None:
    """Reports with their state and each centre's id and error."""
    from bastion.reporting.interfaces import ReportState

    wanted = guarded(lambda: ReportState(state)) if state else None
    rep = _reporting()
    table = Table("report", "account", "state", "files", "NCMEC", "EU Centre")
    with rep.db.read() as session:
        listed = reports.list_reports(session, wanted)
        for report, view in zip(listed, reports.report_views(session, listed), strict=True):
            centres = view["centres"]
            cells = [" ".join(str(v) for v in (c.get("state"), c.get("id") or "", c.get("error") or "") if v)
                     for c in (centres.get("ncmec", {}), centres.get("eu_centre", {}))]
            table.add_row(report.id, report.account_id, report.state, str(len(view["files"])), *cells)
    out.print(table)


@reports_app.command("export")
def reports_export(directory: Annotated[Path, typer.Argument(help="where the files go (made owner-only)")]) -> None:
    """Write each report as it was (or would be) sent: NCMEC XML and EU Centre JSON, one file each."""
    rep = _reporting()
    with progress_bar("exporting reports", None) as advance:  # a refusal is one line and exit 1 (cli/app.py)
        written = reports.export(rep, directory, advance=advance, actor=cli_actor().actor)
    err.print(f"{len(written)} file(s) written to {directory} (owner-only)")


@reports_app.command("send")
def reports_send(report_id: Annotated[str, typer.Argument(help="the id from bastion reports list")]) -> None:
    """Validate a reviewed draft and queue it for NCMEC (then the EU Centre); the running app delivers it.

    The platform hands in each file's bytes first (``PUT /v1/reports/ID/files/CONTENT``); a file without them is
    reported by its hashes alone.
    """
    rep = _reporting()
    reports.send(rep, report_id, actor=cli_actor())  # a refusal is one line and exit 1 (cli/app.py)
    with rep.db.read() as session:
        view = reports.report_view(session, reports.get_report(session, report_id))
    held = sum(1 for f in view["files"] if f["material_held"])
    err.print(f"report {report_id} queued for {', '.join(view['centres'])} ({held} of {len(view['files'])} "
              "file(s) with their bytes; the rest by their hashes)")


@reports_app.command("purge")
def reports_purge() -> None:
    """Delete preserved material whose preservation period has ended (each purge is audited)."""
    purged = reports.purge_expired(_reporting())
    err.print(f"material of {len(purged)} report(s) purged")


@centre_app.command("serve")
def centre_serve(host: HostOption = "127.0.0.1", port: PortOption = 8200) -> None:
    """Run the EU Centre (BASTION_CENTRE_DATABASE_URL, BASTION_CENTRE_FORWARD, BASTION_CENTRE_FORWARD_SECRET)."""
    from bastion.centre.app import create_centre_app
    from bastion.centre.services import parse_forwarding
    from bastion.core.serving import serve as run_server

    settings = Settings.from_env()
    guarded(lambda: parse_forwarding(settings.centre_forward))
    if settings.centre_forward and not settings.centre_forward_secret:
        fail("BASTION_CENTRE_FORWARD_SECRET is not set: forwarded reports would go unsigned")
    require_free_port(host, port)
    open_db(settings.centre_database_url)
    run_server(create_centre_app(settings), host=host, port=port, log_level="info", access_log=False)


@centre_app.command("provider")
def centre_provider(name: Annotated[str, typer.Argument(help="the provider's name, e.g. Video Ltd")],
                    public_key: Annotated[str, typer.Option(
                        help="the provider's Ed25519 public key (bastion orders public-key): its reports must be "
                             "signed with it (Art. 13(b))")] = "",
                    token: Annotated[bool, typer.Option(help="issue an API token (--no-token: only register a "
                                                             "key)")] = True) -> None:
    """Register a provider at the Centre: its signing key, and its API token (role platform), printed alone on
    stdout, once."""
    from bastion.centre.services import register_key
    from bastion.core.clock import SystemClock

    db = open_db(Settings.from_env().centre_database_url)
    if not public_key and not token:
        fail("nothing to do: give --public-key, or leave out --no-token")
    if public_key:
        key_id = guarded(lambda: register_key(db, name, public_key, SystemClock()))
        err.print(f"key {key_id} registered for provider {name!r}")
    if token:
        print(guarded(lambda: auth.create_token(db, role=Role.PLATFORM, name=name, actor=cli_actor().actor)))
        err.print(f"provider {name!r} may now submit reports to /v1/centre/reports")
    if not public_key:
        err.print(f"[yellow]no key registered:[/yellow] the Centre refuses {name!r}'s reports until one is "
                  f"(bastion centre provider {name!r} --no-token --public-key KEY)")


@centre_app.command("token")
def centre_token(name: Annotated[str, typer.Argument(help="who the token is for")],
                 role: Annotated[str, typer.Option(help="admin: reads what came in (GET /v1/centre/reports)")]
                 = "admin") -> None:
    """Create a token for the Centre's own staff; printed alone on stdout, once. Providers get theirs from
    ``bastion centre provider``."""
    wanted = guarded(lambda: Role(role))
    if wanted is not Role.ADMIN:
        fail(f"the Centre's staff tokens are admin tokens (got {role!r}); providers: bastion centre provider NAME")
    db = open_db(Settings.from_env().centre_database_url)
    print(guarded(lambda: auth.create_token(db, role=wanted, name=name, actor=cli_actor().actor)))
    err.print(f"admin token {name!r} created at the Centre")
