"""Commands for the transparency figures and reports (DSA Art. 15, 24 and 42; TCO Art. 7 and 8)."""

from __future__ import annotations

import datetime as dt
import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.common import err, fail, guarded, open_db
from bastion.cli.statements import transparency_app  # one ``transparency`` group for both modules
from bastion.core.config import Settings
from bastion.transparency import reports, rollups


class Format(enum.StrEnum):
    CSV = "csv"
    JSON = "json"
    MD = "md"


def _day(name: str, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        fail(f"{name}: {raw!r} is not a date (YYYY-MM-DD)")


@transparency_app.command("rollup")
def transparency_rollup() -> None:
    """Count every event not yet in the roll-ups now (the worker does it every few seconds while serving)."""
    db = open_db()
    rollups.catch_up(db)
    with db.read() as session:
        for log, last in sorted(rollups.marks(session).items()):
            print(f"{log}\t{last}")


@transparency_app.command("report")
def transparency_report(
        start: Annotated[str, typer.Option("--from", help="first day of the period, YYYY-MM-DD (UTC)")],
        end: Annotated[str, typer.Option("--to", help="last day of the period, YYYY-MM-DD, inclusive")],
        out: Annotated[Path, typer.Option("--out", help="directory to write the report into (created)")],
        fmt: Annotated[Format, typer.Option("--format", help="csv: the eleven template files and a ZIP of them; "
                                                            "json; md")] = Format.CSV) -> None:
    """The DSA transparency report for a period (the Commission's eleven templates), from the roll-ups."""
    first, last = _day("--from", start), _day("--to", end)
    if last < first:
        fail("--from must not be after --to")
    settings = Settings.from_env()
    config = guarded(lambda: reports.ReportConfig.load(settings.transparency_report_path))
    db = open_db(settings.database_url)
    rollups.catch_up(db)
    with db.read() as session:
        report = reports.dsa_report(rollups.cells_for(session, first, last), first, last, config)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"dsa-transparency-{first.isoformat()}-{last.isoformat()}"
    if fmt is Format.CSV:
        for part in reports.PARTS:
            (out / reports.file_name(part)).write_text(reports.csv_text(report[part]), encoding="utf-8")
        (out / f"{stem}.zip").write_bytes(reports.archive(report))
    elif fmt is Format.JSON:
        (out / f"{stem}.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        (out / f"{stem}.md").write_text(reports.markdown(report), encoding="utf-8")
    err.print(f"DSA transparency report {first}/{last} written to {out}")


@transparency_app.command("tco")
def transparency_tco(
        year: Annotated[int, typer.Option(help="the calendar year reported")],
        hub: Annotated[bool, typer.Option(help="Art. 8: each competent authority's figures from the hub's database "
                                               "(BASTION_HUB_DATABASE_URL) instead of the provider's Art. 7")] = False,
) -> None:
    """The TCO transparency figures for a calendar year, as JSON (Art. 7 provider; Art. 8 with --hub)."""
    if not 2000 <= year <= 2999:
        fail("--year must be a calendar year")
    settings = Settings.from_env()
    if hub:
        hub_db = open_db(settings.hub_database_url)
        with hub_db.read() as session:
            print(json.dumps([a.model_dump() for a in reports.tco_authorities(session, year)], indent=1))
        return
    db = open_db(settings.database_url)
    rollups.catch_up(db)
    with db.read() as session:
        cells = rollups.cells(session, dt.date(year, 1, 1), dt.date(year, 12, 31), ("category",))
    print(reports.tco_provider(cells, year).model_dump_json(indent=1))
