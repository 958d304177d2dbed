"""Commands for crisis mode: activate a crisis (with its known material), deactivate it, list crises."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import cli_actor, err, guarded, open_db, out

if TYPE_CHECKING:
    from bastion.core.db import Database
    from bastion.feed.crisis import Crises

crisis_app = typer.Typer(help="Crisis mode: activate, deactivate and list crises (docs/feed.md).",
                         no_args_is_help=True)
app.add_typer(crisis_app, name="crisis")


def _crises(db: Database) -> Crises:
    from bastion.core.clock import SystemClock
    from bastion.core.config import Settings
    from bastion.exchanges.services import CrisisSharing
    from bastion.feed.crisis import Crises
    from bastion.matching.matcher import Matcher
    from bastion.moderation.kernel import Moderation
    from bastion.moderation.policy import DEFAULT_POLICY_PATH, PolicyFile

    settings = Settings.from_env()
    mod = Moderation(db, Matcher(db), PolicyFile(settings.policy_path or DEFAULT_POLICY_PATH), SystemClock())
    return Crises(db, SystemClock(), mod, sharing=CrisisSharing())


@crisis_app.command("activate")
def crisis_activate(
        reference: Annotated[str, typer.Argument(help="the protocol's reference for the crisis (e.g. ECP-2026-03)")],
        protocol: Annotated[str, typer.Option(help="eu_crisis_protocol, gifct_cip or internal")] = "internal",
        level: Annotated[str, typer.Option(help="the GIFCT Content Incident Protocol level (gifct_cip)")] = "",
        country: Annotated[list[str] | None, typer.Option(
            help="an affected country (ISO 3166-1 alpha-2); repeat for several")] = None,
        category: Annotated[list[str] | None, typer.Option(
            help="a category the crisis is about (default: terrorist_content and violent_extremism)")] = None,
        title: Annotated[str, typer.Option(help="a short description")] = "",
        material: Annotated[list[Path] | None, typer.Option(
            help="a file of known material (image or video) to bank at once; repeat for several",
            exists=True, dir_okay=False, readable=True)] = None,
        keep_live: Annotated[bool, typer.Option(
            help="leave livestreams from the countries in feeds (default: keep them out)")] = False,
        threshold_factor: Annotated[float, typer.Option(
            help="review thresholds of the crisis categories are multiplied by this (0.1 to 1)")] = 0.8,
        severity_boost: Annotated[int, typer.Option(help="severity added to the crisis categories' cases (0-4)")] = 1,
        share_with: Annotated[list[str] | None, typer.Option(
            help="an exchange (by name) to share confirmed perpetrator content with; repeat for several "
                 "(admins only; exchanges that take shared hashes only)")] = None,
) -> None:
    """Activate a crisis: its rules apply in every process within a second; known material is banked."""
    from bastion.feed import crisis
    from bastion.feed.crisis import CrisisProtocol

    kind = guarded(lambda: CrisisProtocol(protocol))
    hashes: list[tuple[str, str]] = []
    for path in material or []:
        hashes += guarded(functools.partial(crisis.material_from_file, path))
    db = open_db()
    c = _crises(db)
    row = guarded(lambda: crisis.activate(c, crisis.NewCrisis(
        protocol=kind, reference=reference, countries=country or [], level=level, title=title,
        categories=category or list(crisis.DEFAULT_CATEGORIES), material=hashes, exclude_live=not keep_live,
        review_threshold_factor=threshold_factor, severity_boost=severity_boost, share_with=share_with or []),
        actor=cli_actor()))
    shared = f"; shared with {', '.join(row.share_with)}" if row.share_with else ""
    err.print(f"crisis {row.id} ({row.reference}) active; bank {row.bank}, {len(hashes)} hashes of known material"
              f"{shared}", highlight=False)
    out.print(row.id)


@crisis_app.command("deactivate")
def crisis_deactivate(crisis_id: Annotated[int, typer.Argument(help="the crisis's id (bastion crisis list)")],
                      note: Annotated[str, typer.Option(help="why it ends, for the timeline")] = "") -> None:
    """End a crisis: its rules stop within a second; its bank stays."""
    from bastion.feed import crisis

    db = open_db()
    row = guarded(lambda: crisis.deactivate(_crises(db), crisis_id, actor=cli_actor(), note=note))
    err.print(f"crisis {row.id} ({row.reference}) ended", highlight=False)


@crisis_app.command("list")
def crisis_list(active: Annotated[bool, typer.Option(help="only the active crises")] = False) -> None:
    """Crises, newest first."""
    from bastion.feed import crisis
    from bastion.feed.crisis import CrisisState

    db = open_db()
    with db.read() as session:
        rows = crisis.list_crises(session, state=CrisisState.ACTIVE if active else None)
        table = Table("id", "reference", "protocol", "countries", "state", "activated", "bank")
        for r in rows:
            table.add_row(str(r.id), r.reference, r.protocol + (f" level {r.level}" if r.level else ""),
                          ", ".join(r.countries), r.state, r.activated_at.strftime("%Y-%m-%d %H:%M"), r.bank)
    out.print(table)
