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
        for report in reports.list_reports(session, wanted):
            view = reports.report_view(session, report)
            centres = view["centres"]
            cells = [" ".join(str(v) for v in (c.get("state"), c.get("id") or "", c.get("error") or "") if v)
                     for c in (centres.get("ncmec", {}), centres.get("eu_centre", {}))]
            table.add_row(report.id, report.account_id, report.state, str(len(view["files"])), *cells)
    out.print(table)


@reports_app.command("export")
def reports_export(directory: Annotated[Path, typer.Argument(help="where the files go (made owner-only)")]) -> None:
    """Write each report as it was (or would be) sent: NCMEC XML and EU Centre JSON, one file each."""
    from bastion.reporting.interfaces import ReportingError

    rep = _reporting()
    try:
        with progress_bar("exporting reports", None) as advance:
            written = reports.export(rep, directory, advance=advance, actor=cli_actor().actor)
    except ReportingError as exc:
        fail(f"export stopped: {exc}")
    err.print(f"{len(written)} file(s) written to {directory} (owner-only)")


@reports_app.command("purge")
def reports_purge() -> None:
    """Delete preserved material whose preservation period has ended (each purge is audited)."""
    purged = reports.purge_expired(_reporting())
    err.print(f"material of {len(purged)} report(s) purged")


@centre_app.command("serve")
def centre_serve(host: HostOption = "127.0.0.1", port: PortOption = 8200) -> None:
    """Run the EU Centre (BASTION_CENTRE_DATABASE_URL, BASTION_CENTRE_FORWARD, BASTION_CENTRE_FORWARD_SECRET)."""
    import uvicorn

    from bastion.centre.app import create_centre_app
    from bastion.centre.services import parse_forwarding

    settings = Settings.from_env()
    guarded(lambda: parse_forwarding(settings.centre_forward))
    if settings.centre_forward and not settings.centre_forward_secret:
        fail("BASTION_CENTRE_FORWARD_SECRET is not set: forwarded reports would go unsigned")
    require_free_port(host, port)
    open_db(settings.centre_database_url)
    uvicorn.run(create_centre_app(settings), host=host, port=port, log_level="info", access_log=False)


@centre_app.command("provider")
def centre_provider(name: Annotated[str, typer.Argument(help="the provider's name, e.g. Video Ltd")]) -> None:
    """Register a provider at the Centre; its API token (role platform) is printed alone on stdout, once."""
    db = open_db(Settings.from_env().centre_database_url)
    token = guarded(lambda: auth.create_token(db, role=Role.PLATFORM, name=name, actor=cli_actor().actor))
    print(token)
    err.print(f"provider {name!r} may now submit reports to /v1/centre/reports")
