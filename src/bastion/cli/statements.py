"""``bastion transparency``: statements of reasons and the DSA Transparency Database: queue the ones issued before
submission was switched on, submit, and see where each stands (the database's errors for the refused ones)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import err, fail, open_db, out, progress_bar


def _group() -> typer.Typer:
    """The ``transparency`` group, shared with the transparency reports' commands whichever module registers first."""
    for info in app.registered_groups:
        if info.name == "transparency" and isinstance(info.typer_instance, typer.Typer):
            return info.typer_instance
    group = typer.Typer(help="Transparency: statements of reasons to the DSA Transparency Database, and reports.",
                        no_args_is_help=True)
    app.add_typer(group, name="transparency")
    return group


transparency_app = _group()


@transparency_app.command("backfill")
def transparency_backfill() -> None:
    """Queue for the Transparency Database every statement of reasons not queued yet (those issued before
    submission was switched on); safe to run again, and while the platform runs."""
    from bastion.core.clock import SystemClock
    from bastion.moderation import queries
    from bastion.transparency import submission

    db = open_db()
    with db.read() as session:
        total = queries.statement_count(session)
    done = {"seen": 0}
    with progress_bar("queueing statements", total) as advance:
        def progress(seen: int, queued: int) -> None:
            advance(seen - done["seen"])
            done["seen"] = seen

        queued = submission.backfill(db, clock=SystemClock(), progress=progress)
    err.print(f"{queued} statements queued of {done['seen']} ({done['seen'] - queued} were queued already)",
              highlight=False)


@transparency_app.command("statements")
def transparency_statements(
    state: Annotated[str | None, typer.Option(help="only this state: queued, sending, accepted or rejected")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="at most this many statements listed")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON (counts and items) instead of tables")] = False,
) -> None:
    """Statements per submission state, then the statements themselves (a refused one with the database's errors)."""
    from bastion.transparency import submission
    from bastion.transparency.sor_states import SubmissionState

    try:
        chosen = SubmissionState(state) if state else None
    except ValueError:
        fail(f"unknown state {state!r}: one of {', '.join(s.value for s in SubmissionState)}")
    db = open_db()
    with db.read() as session:
        counts = submission.counts(session)
        views = submission.listing(session, state=chosen, limit=limit)
    if as_json:
        out.print_json(json.dumps({"counts": counts, "items": [
            {"puid": v.puid, "state": v.state, "attempts": v.attempts, "errors": v.errors,
             "last_error": v.last_error, "uuid": v.uuid} for v in views]}))
        return
    out.print("  ".join(f"{name}: {n}" for name, n in counts.items()), highlight=False)
    table = Table("puid", "state", "attempts", "errors / last error", "uuid")
    for v in views:
        problem = "; ".join(f"{f}: {' '.join(m)}" for f, m in v.errors.items()) or v.last_error
        table.add_row(v.puid, v.state, str(v.attempts), problem, v.uuid)
    if views:
        out.print(table)


@transparency_app.command("submit")
def transparency_submit(
    until_empty: Annotated[bool, typer.Option(help="stop once no statement is due (else run until interrupted)")]
    = False,
) -> None:
    """Submit queued statements to the Transparency Database in batches of 100, as the server's worker does
    (BASTION_TRANSPARENCY_DB_URL and BASTION_TRANSPARENCY_DB_TOKEN)."""
    from bastion.core.clock import SystemClock
    from bastion.core.config import Settings
    from bastion.transparency import submission
    from bastion.transparency.sor_client import TransparencyClient

    settings = Settings.from_env()
    if not settings.submits_statements or not settings.transparency_db_url:
        fail("set BASTION_TRANSPARENCY_DB_URL and BASTION_TRANSPARENCY_DB_TOKEN to submit statements")
    submitter = submission.Submitter(open_db(), TransparencyClient(settings.transparency_db_url,
                                                                   settings.transparency_db_token), SystemClock())
    sent = 0
    while True:
        report = submitter.round()
        sent += report.accepted + report.existing
        if report.error:
            err.print(f"retrying later: {report.error}", highlight=False)
        if report.claimed == 0:
            if until_empty:
                break
            time.sleep(settings.transparency_interval_seconds)
        elif report.error and until_empty:
            break
    err.print(f"{sent} statements accepted", highlight=False)
