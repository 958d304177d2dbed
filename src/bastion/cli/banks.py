"""Commands for banks of known content, hashing files and scanning folders."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import cli_actor, err, fail, guarded, open_db, out, progress_bar
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing import budget
from bastion.hashing.services import hash_path, signal_json
from bastion.matching import services as banks
from bastion.matching.interfaces import BankError, BankNotFound
from bastion.matching.matcher import Matcher
from bastion.matching.scan import FileResult, ScanSummary, scan_files, walk

bank_app = typer.Typer(help="Banks of known content.", no_args_is_help=True)
app.add_typer(bank_app, name="bank")
T = TypeVar("T")
BankName = Annotated[str, typer.Argument(help="the bank's name, e.g. TERRORIST_CONTENT")]
Category = Annotated[str, typer.Option(help="each entry's category, e.g. terrorist_content")]
Source = Annotated[str, typer.Option(help="where the material came from (free text)")]


def no_such_bank(name: str, message: str) -> NoReturn:
    """Fail, offering the names of existing banks that look like ``name`` (the CLI acts as an admin, who may see
    every bank; the API never suggests names)."""
    db = open_db()
    with db.read() as session:
        close = banks.close_bank_names(session, name, cli_actor())
    fail(f"{message}; did you mean {' or '.join(close)}?" if close else f"{message} (bastion bank list shows them)")


def bank_guarded(name: str, fn: Callable[[], T]) -> T:
    """As ``guarded``, with names offered when the bank does not exist."""
    try:
        return fn()
    except BankNotFound as exc:
        no_such_bank(name, str(exc))
    except (BankError, ValueError) as exc:
        fail(str(exc))


def _parse_thresholds(raw: list[str]) -> dict[str, int]:
    thresholds: dict[str, int] = {}
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            fail(f"--threshold takes SIGNAL_TYPE=DISTANCE, e.g. pdq=31, got {item!r}")
        thresholds[name.strip()] = int(value)
    return thresholds


@bank_app.command("create")
def bank_create(
    name: Annotated[str, typer.Argument(help="upper case, digits and _, e.g. TERRORIST_CONTENT")],
    description: Annotated[str, typer.Option(help="what the bank holds, for curators")] = "",
    restricted: Annotated[bool, typer.Option(help="child-abuse hashes: child-safety roles only")] = False,
    dihedral: Annotated[bool, typer.Option(help="also match flipped and rotated copies")] = False,
    threshold: Annotated[list[str] | None, typer.Option(help="SIGNAL_TYPE=DISTANCE, repeatable")] = None,
) -> None:
    """Create an empty bank; fill it with bank import (a CSV) or bank add (files)."""
    db = open_db()
    thresholds = _parse_thresholds(threshold or [])
    guarded(lambda: banks.create_bank(db, name, actor=cli_actor(), description=description, restricted=restricted,
                                      dihedral=dihedral, thresholds=thresholds))
    err.print(f"bank {name} created")


@bank_app.command("list")
def bank_list(as_json: Annotated[bool, typer.Option("--json", help="one JSON object per bank")] = False) -> None:
    """Every bank with its entries by signal type, and whether it is enabled, restricted and dihedral."""
    db = open_db()
    with db.read() as session:
        summaries = banks.list_banks(session)
    if as_json:
        for s in summaries:
            print(json.dumps({"name": s.bank.name, "enabled": s.bank.enabled, "restricted": s.bank.restricted,
                              "entries": s.entries, "by_signal_type": s.by_signal_type}))
        return
    table = Table("bank", "entries", "by signal type", "enabled", "restricted", "dihedral", "thresholds")
    for s in summaries:
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(s.by_signal_type.items()))
        table.add_row(s.bank.name, f"{s.entries:,}", by_type, _yes(s.bank.enabled), _yes(s.bank.restricted),
                      _yes(s.bank.dihedral), json.dumps(s.bank.thresholds) if s.bank.thresholds else "defaults")
    out.print(table)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@bank_app.command("enable")
def bank_enable(name: BankName) -> None:
    """Match against the bank again (every server picks it up within a second)."""
    db = open_db()
    bank_guarded(name, lambda: banks.update_bank(db, name, actor=cli_actor(), enabled=True))


@bank_app.command("disable")
def bank_disable(name: BankName) -> None:
    """Stop matching against the bank, keeping its entries (every server stops within a second)."""
    db = open_db()
    bank_guarded(name, lambda: banks.update_bank(db, name, actor=cli_actor(), enabled=False))


@bank_app.command("import")
def bank_import(name: BankName,
                file: Annotated[Path, typer.Argument(help="a UTF-8 CSV, e.g. from bastion hash --csv")]) -> None:
    """Import a CSV (header signal_type,value[,category,source,note]); one bad line and nothing is imported."""
    if not file.is_file():
        fail(f"{file}: no such file")
    db = open_db()
    size = file.stat().st_size
    with file.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f, \
            progress_bar(f"import {file.name}", size, unit="bytes") as advance:
        position = 0

        def on_batch(_rows: int) -> None:
            nonlocal position
            now = raw.tell()
            advance(now - position)
            position = now

        try:
            result = banks.import_csv(db, name, f, actor=cli_actor(), progress=on_batch)
        except UnicodeDecodeError as exc:
            fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); nothing imported")
        except BankNotFound as exc:
            no_such_bank(name, f"{exc}; nothing imported")
        except BankError as exc:
            fail(f"{file}: {exc}; nothing imported")
        advance(size - position)
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(result.by_signal_type.items()))
    err.print(f"imported {result.added:,} entries into {name} ({result.duplicates:,} duplicates skipped; {by_type})")


@bank_app.command("export")
def bank_export(name: BankName,
                output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default stdout)")] = None
                ) -> None:
    """Write the bank's enabled entries as CSV (the import format), streamed."""
    db = open_db()
    rows = banks.export_rows(db, name, actor=cli_actor())
    first = bank_guarded(name, lambda: next(rows))
    target = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        for line in banks.csv_lines([first]):
            target.write(line)
        for line in banks.csv_lines(rows):
            target.write(line)
    finally:
        if output:
            target.close()


# --- hashing and scanning -----------------------------------------------------------------------------------------


@bank_app.command("add")
def bank_add(name: BankName,
             files: Annotated[list[Path], typer.Argument(help="images, videos or text files to hash")],
             category: Category = "", source: Source = "") -> None:
    """Hash files and add every signal to the bank, each noted with its file's name; one unreadable file and
    nothing is added."""
    missing = [f for f in files if not f.is_file()]
    if missing:
        fail(f"{missing[0]}: no such file; nothing added")
    rows = io.StringIO()
    for line in _signal_rows(files, category, source, stop_on_error=True):
        rows.write(line)
    rows.seek(0)
    db = open_db()
    result = bank_guarded(name, lambda: banks.import_csv(db, name, rows, actor=cli_actor()))
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(result.by_signal_type.items()))
    err.print(f"added {result.added:,} entries from {len(files)} file(s) to {name} "
              f"({result.duplicates:,} already there; {by_type})")


def _signal_rows(files: list[Path], category: str, source: str, *, stop_on_error: bool) -> Iterator[str]:
    """The files' signals as lines of a bank CSV (header first), the note naming each file."""
    yield from banks.csv_lines([list(banks.CSV_HEADER)])
    for file in files:
        result = hash_path(file)
        for e in result.errors:
            if stop_on_error:
                fail(f"{file}: {e}; nothing added")
            err.print(f"[yellow]warning:[/yellow] {file}: {e}", highlight=False)
        yield from banks.csv_lines([s.signal_type, s.value, category, source, file.name] for s in result.signals)


@app.command("hash")
def hash_files(files: Annotated[list[Path], typer.Argument(help="images, videos or text files")],
               as_csv: Annotated[bool, typer.Option("--csv", help="a bank CSV (bastion bank import) instead of "
                                                    "JSON lines")] = False,
               category: Annotated[str, typer.Option(help="with --csv: each row's category")] = "",
               source: Annotated[str, typer.Option(help="with --csv: each row's source")] = "") -> None:
    """Print one JSON object per signal: path, signal_type, value, quality (where one applies); with --csv, the
    bank import format (signal_type,value,category,source,note; the note names the file)."""
    present = [f for f in files if f.is_file()]
    for file in files:
        if not file.is_file():
            err.print(f"[red]error:[/red] {file}: no such file", highlight=False)
    if as_csv:
        for line in _signal_rows(present, category, source, stop_on_error=False):
            sys.stdout.write(line)
    else:
        for file in present:
            result = hash_path(file)
            for e in result.errors:
                err.print(f"[yellow]warning:[/yellow] {file}: {e}", highlight=False)
            for s in result.signals:
                print(json.dumps({"path": str(file), **signal_json(s)}))
    raise typer.Exit(0 if len(present) == len(files) else 1)


@app.command("scan")
def scan(paths: Annotated[list[Path], typer.Argument(help="files and folders (folders are walked)")],
         bank: Annotated[list[str] | None, typer.Option(help="only these banks (repeatable)")] = None,
         as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file")] = False) -> None:
    """Hash and match every file under PATHS; a summary at the end (JSON lines with --json)."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or directory")
    db = open_db()
    budget.configure(budget.MediaBudget.from_settings(Settings.from_env()))  # BASTION_MAX_IMAGE_PIXELS, ...
    matcher = load_matcher(db)
    files = list(walk(paths))

    def on_file(result: FileResult) -> None:
        advance(1)
        if as_json:
            print(json.dumps(result.to_json()))
        if result.error is not None:  # named, not only counted: a damaged image may be one a bank would match
            err.print(f"unreadable: {result.path}: {result.error}", highlight=False, markup=False)

    with progress_bar("scan", len(files)) as advance:
        summary = scan_files(files, matcher, banks=set(bank) if bank else None, on_file=on_file)
    _print_summary(summary)


def load_matcher(db: Database) -> Matcher:
    matcher = Matcher(db)
    with db.read() as session:
        total = sum(s.entries for s in banks.list_banks(session))
    with progress_bar("load banks", total) as advance:
        matcher.load(progress=advance)
    return matcher


def _print_summary(summary: ScanSummary) -> None:
    table = Table("files", "matched", "unreadable", title="scan summary")
    table.add_row(f"{summary.files:,}", f"{summary.matched:,}", f"{summary.unreadable:,}")
    err.print(table)
    if summary.by_bank:
        by_bank = Table("bank", "files matched", title="matches by bank")
        for name, n in sorted(summary.by_bank.items()):
            by_bank.add_row(name, f"{n:,}")
        err.print(by_bank)


