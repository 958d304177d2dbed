"""Commands for hash exchanges: configure one, list them, fetch now (with a progress bar), status, feedback."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import cli_actor, err, fail, guarded, open_db, out, progress_bar
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind, Opinion

exchange_app = typer.Typer(help="Hash exchanges (ThreatExchange, NCMEC, StopNCII, Tech Against Terrorism) feeding "
                                 "banks.", no_args_is_help=True)
app.add_typer(exchange_app, name="exchange")
ExchangeName = Annotated[str, typer.Argument(help="the exchange's name, e.g. te-terror")]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON object per exchange")]


def _settings(raw: list[str]) -> dict[str, object]:
    settings: dict[str, object] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--setting takes KEY=VALUE, e.g. privacy_group=1234, got {item!r}")
        key = key.strip()
        if key == "only_esp_ids":
            if not all(v.strip().isdigit() for v in value.split(",")):
                fail("only_esp_ids takes NCMEC member ids separated by commas, e.g. only_esp_ids=12,34")
            settings[key] = [int(v) for v in value.split(",")]
        else:
            settings[key] = value.strip()
    return settings


@exchange_app.command("add")
def exchange_add(
    name: ExchangeName,
    kind: Annotated[ExchangeKind, typer.Option(help="the exchange's API")],
    bank: Annotated[str, typer.Option(help="the bank it feeds (restricted for ncmec and stop_ncii)")],
    signal_type: Annotated[list[str] | None, typer.Option(help="take only this signal type (pdq, md5); "
                                                                "repeatable; default: all the kind brings")] = None,
    category: Annotated[list[str] | None, typer.Option(help="take only records with this tag or "
                                                             "classification; repeatable; default: all")] = None,
    entry_category: Annotated[str, typer.Option(help="the category entries get (default: the record's tag)")] = "",
    setting: Annotated[list[str] | None, typer.Option(help="KEY=VALUE: privacy_group (fb_threatexchange), "
                                                           "environment, only_esp_ids (ncmec), base_url")] = None,
    credentials_env: Annotated[str, typer.Option(help="the environment variable holding the credentials "
                                                      "(default TX_ACCESS_TOKEN, TX_NCMEC_CREDENTIALS, "
                                                      "TX_STOPNCII_KEYS, TX_TAT_CREDENTIALS)")] = "",
    interval: Annotated[int, typer.Option(help="seconds between scheduled fetches")] = 3600,
) -> None:
    """Configure an exchange feeding a bank. Credentials are never stored: set the variable for the server."""
    db = open_db()
    new = services.NewExchange(name, kind, bank, tuple(signal_type or ()), tuple(category or ()), entry_category,
                               _settings(setting or []), credentials_env, interval)
    exchange = guarded(lambda: services.add_exchange(db, new, actor=cli_actor()))
    err.print(f"exchange {name} added, feeding bank {bank}; credentials from ${exchange.credentials_env}")


@exchange_app.command("list")
def exchange_list(as_json: JsonOption = False) -> None:
    """Every exchange with its bank, last fetch, counts and error."""
    found = services.list_exchanges(open_db(), cli_actor())
    if as_json:
        for status in found:
            print(json.dumps(status.to_json()))
        return
    table = Table("exchange", "kind", "bank", "enabled", "last fetch", "records", "entries", "error")
    for s in found:
        table.add_row(s.name, s.kind, s.bank, "yes" if s.enabled else "no", s.last_fetch_at or "never",
                      str(s.records_fetched), str(s.entries), s.last_error or "")
    out.print(table)


@exchange_app.command("status")
def exchange_status(name: ExchangeName, as_json: JsonOption = False) -> None:
    """One exchange's settings and state (never its credentials)."""
    status = guarded(lambda: services.exchange_status(open_db(), name, cli_actor()))
    if as_json:
        print(json.dumps(status.to_json()))
        return
    for key, value in status.to_json().items():
        out.print(f"{key}: {value}", highlight=False)


@exchange_app.command("fetch")
def exchange_fetch(
    name: ExchangeName,
    max_pages: Annotated[int | None, typer.Option(help="stop after this many pages (default: until up to date)")]
    = None,
) -> None:
    """Fetch now from the exchange's checkpoint; each page is committed with its checkpoint, so an interrupted
    fetch resumes where it stopped."""
    db = open_db()
    with progress_bar(f"fetching {name}", None) as advance:
        result = guarded(lambda: services.fetch(db, name, actor=cli_actor(), progress=advance, max_pages=max_pages))
    more = "" if result.complete else " (more waiting: run it again)"
    err.print(f"{name}: {result.pages} page(s), {result.records} record(s): {result.added} entries added, "
              f"{result.removed} removed, {result.skipped} skipped{more}")


@exchange_app.command("feedback")
def exchange_feedback(
    entry_id: Annotated[int, typer.Argument(help="the bank entry's id")],
    opinion: Annotated[Opinion, typer.Argument(help="what to tell the exchanges it came from")],
) -> None:
    """Queue feedback (seen, true_positive, false_positive) for the exchanges an entry came from."""
    queued = guarded(lambda: services.send_feedback(open_db(), entry_id, opinion, actor=cli_actor()))
    err.print(f"{opinion.value} queued for {', '.join(queued)}")


@exchange_app.command("set")
def exchange_set(
    name: ExchangeName,
    interval: Annotated[int | None, typer.Option(help="seconds between scheduled fetches")] = None,
    category: Annotated[list[str] | None, typer.Option(help="take only records with this tag or classification; "
                                                             "repeatable (replaces the list)")] = None,
    all_categories: Annotated[bool, typer.Option(help="take records whatever their tags")] = False,
    entry_category: Annotated[str | None, typer.Option(help="the category entries get ('' : the record's tag)")]
    = None,
    refetch: Annotated[bool, typer.Option(help="forget the checkpoint: the next fetch reads every record again")]
    = False,
) -> None:
    """Change an exchange's schedule or filters; --refetch applies new filters to what was fetched already."""
    categories = [] if all_categories else category
    guarded(lambda: services.update_exchange(open_db(), name, actor=cli_actor(), interval_seconds=interval,
                                             categories=categories, entry_category=entry_category, refetch=refetch))
    err.print(f"exchange {name} updated" + ("; the next fetch reads every record again" if refetch else ""))


@exchange_app.command("enable")
def exchange_enable(name: ExchangeName) -> None:
    """Resume an exchange's scheduled fetches."""
    guarded(lambda: services.set_enabled(open_db(), name, True, actor=cli_actor()))
    err.print(f"exchange {name} enabled")


@exchange_app.command("disable")
def exchange_disable(name: ExchangeName) -> None:
    """Stop an exchange's scheduled fetches (its entries stay)."""
    guarded(lambda: services.set_enabled(open_db(), name, False, actor=cli_actor()))
    err.print(f"exchange {name} disabled")
