"""Commands for fact-checking partners and designated entities (docs/factchecks.md, docs/designations.md)."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import cli_actor, err, fail, guarded, open_db, out
from bastion.core.config import Settings

if TYPE_CHECKING:
    from bastion.moderation.kernel import Moderation

factcheck_app = typer.Typer(help="Fact-checking partners: who rates items, with which key.", no_args_is_help=True)
partner_app = typer.Typer(help="Register and list fact-checking partners.", no_args_is_help=True)
designation_app = typer.Typer(help="Designated entities: the list, and changes of category (previewed, confirmed).",
                              no_args_is_help=True)
factcheck_app.add_typer(partner_app, name="partner")
app.add_typer(factcheck_app, name="factcheck")
app.add_typer(designation_app, name="designation")
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _moderation() -> Moderation:
    """Moderation as the server configures it, on the platform's database."""
    from bastion.core.clock import SystemClock
    from bastion.matching.matcher import Matcher
    from bastion.moderation.kernel import Moderation
    from bastion.moderation.policy import DEFAULT_POLICY_PATH, PolicyFile

    settings = Settings.from_env()
    db = open_db()
    return Moderation(db, Matcher(db), PolicyFile(settings.policy_path or DEFAULT_POLICY_PATH), SystemClock(),
                      settings.platform_webhook_url)


@partner_app.command("add")
def partner_add(name: Annotated[str, typer.Argument(help="the partner's name, e.g. checkers-eu")],
                key: Annotated[str, typer.Option(help="the partner's Ed25519 public key (its ratings are signed so)")],
                url: Annotated[str, typer.Option(help="where items to check are POSTed")]) -> None:
    """Register a partner: items go to its URL; ratings signed with its key are accepted."""
    from bastion.factchecks import policy
    from bastion.factchecks.services import FactChecks, add_partner

    fc = FactChecks(_moderation(), guarded(policy.load))
    view = add_partner(fc, name=name, public_key=key, url=url, actor=cli_actor())
    err.print(f"partner {view.name!r} registered (key id {view.key_id})", highlight=False)


@partner_app.command("disable")
def partner_disable(name: Annotated[str, typer.Argument(help="the partner's name, from partner list")]) -> None:
    """Stop accepting the partner's key and sending it items (its past ratings stay)."""
    from bastion.factchecks import policy
    from bastion.factchecks.services import FactChecks, disable_partner

    view = disable_partner(FactChecks(_moderation(), guarded(policy.load)), name, actor=cli_actor())
    err.print(f"partner {view.name!r} disabled (key id {view.key_id} no longer accepted)", highlight=False)


@partner_app.command("list")
def partner_list(as_json: AsJson = False) -> None:
    """The registered partners, their key ids and URLs."""
    from bastion.factchecks.services import as_dict, list_partners

    partners = [as_dict(p) for p in list_partners(open_db())]
    if as_json:
        print(json.dumps(partners, indent=2))
        return
    table = Table("name", "key id", "url", "enabled")
    for p in partners:
        table.add_row(p["name"], p["key_id"], p["url"], "yes" if p["enabled"] else "no")
    out.print(table)


@designation_app.command("add")
def designation_add(
        name: Annotated[str, typer.Argument(help="the entity's name")],
        body: Annotated[str, typer.Option("--body", help="who designated it, e.g. 'UN Security Council'")],
        date: Annotated[str, typer.Option("--date", help="when it was designated (YYYY-MM-DD)")],
        category: Annotated[str, typer.Option(help="policy category, e.g. terrorist_content, hate_speech")],
        alias: Annotated[list[str] | None, typer.Option(help="another name (repeat the option for more)")] = None,
        keyword: Annotated[list[str] | None, typer.Option(help="a word that links a text to it (repeatable)")] = None,
        bank: Annotated[list[str] | None, typer.Option(help="a bank of its material (repeatable)")] = None) -> None:
    """Add an entity to the designation list, linked to banks and keywords."""
    from bastion.designations.services import NewEntity, designate

    on = guarded(lambda: dt.date.fromisoformat(date))
    entity = designate(_moderation(), NewEntity(name=name, designating_body=body, designated_on=on,
                                                category=category, aliases=alias or [], keywords=keyword or [],
                                                banks=bank or []), actor=cli_actor())
    err.print(f"designated {entity['name']!r} (id {entity['id']}, {entity['category']})", highlight=False)


@designation_app.command("list")
def designation_list(as_json: AsJson = False) -> None:
    """Designated entities, by name, with their category and links."""
    from bastion.designations.services import list_entities

    entities = list_entities(_moderation())
    if as_json:
        print(json.dumps(entities, indent=2))
        return
    table = Table("id", "name", "category", "designated by", "on", "banks", "keywords", "delisted")
    for e in entities:
        table.add_row(str(e["id"]), e["name"], e["category"], e["designating_body"], e["designated_on"],
                      ", ".join(e["banks"]), ", ".join(e["keywords"] + e["aliases"]), e["delisted_on"] or "")
    out.print(table)


@designation_app.command("edit")
def designation_edit(
        name: Annotated[str, typer.Argument(help="the entity's name")],
        alias: Annotated[list[str] | None, typer.Option(help="replaces the aliases (repeatable)")] = None,
        keyword: Annotated[list[str] | None, typer.Option(help="replaces the keywords (repeatable)")] = None,
        bank: Annotated[list[str] | None, typer.Option(help="replaces the banks (repeatable)")] = None,
        note: Annotated[str, typer.Option(help="why (shown with the change)")] = "") -> None:
    """Propose new aliases, keywords or banks (each option given replaces that list). Nothing applies until
    another person runs `bastion designation confirm CHANGE_ID`."""
    from bastion.designations.services import Links, entity_by_name, propose_links

    mod = _moderation()
    links = Links(aliases=alias, keywords=keyword, banks=bank)
    change = propose_links(mod, entity_by_name(mod, name)["id"], links, note=note, actor=cli_actor())
    _print_change(change)
    _awaiting(change)


@designation_app.command("delist")
def designation_delist(
        name: Annotated[str, typer.Argument(help="the entity's name")],
        date: Annotated[str, typer.Option("--date", help="when its designating body took it off (YYYY-MM-DD)")],
        note: Annotated[str, typer.Option(help="why, e.g. the act that revoked it")] = "") -> None:
    """Propose taking an entity off the list: once another person confirms it, its record and history stay and its
    links no longer make content designated."""
    from bastion.designations.services import entity_by_name, propose_delist

    mod = _moderation()
    on = guarded(lambda: dt.date.fromisoformat(date))
    change = propose_delist(mod, entity_by_name(mod, name)["id"], on=on, note=note, actor=cli_actor())
    _print_change(change)
    _awaiting(change)


def _awaiting(change: dict[str, Any]) -> None:
    err.print(f"nothing applied yet: another person confirms with `bastion designation confirm {change['id']}`",
              highlight=False)


def _print_change(change: dict[str, Any]) -> None:
    preview = change["preview"]
    if change["kind"] == "links":
        err.print(f"change {change['id']}: links ({change['state']})", highlight=False)
        for k in ("banks", "keywords", "aliases"):
            err.print(f"  {k}: {', '.join(preview['links']['before'][k]) or 'none'} -> "
                      f"{', '.join(preview['links']['after'][k]) or 'none'}", highlight=False)
        return
    if change["kind"] == "delist":
        err.print(f"change {change['id']}: delist from {preview['delisted_on']} ({change['state']})", highlight=False)
        return
    err.print(f"change {change['id']}: {change['from_category']} -> {change['to_category']} ({change['state']})",
              highlight=False)
    for case in preview["open_cases"]:
        err.print(f"  open case {case['case_id']} ({case['content_id']}): {case['from_queue']} -> "
                  f"{case['to_queue']}  [{', '.join(case['links'])}]", highlight=False)
    for decision in preview["past_decisions"]:
        err.print(f"  past decision on {decision['content_id']} (case {decision['case_id']}, "
                  f"{decision['category']}: {', '.join(decision['actions'])}) would be altered", highlight=False)


@designation_app.command("change")
def designation_change(
        name: Annotated[str, typer.Argument(help="the entity's name")],
        category: Annotated[str, typer.Option(help="the new policy category")],
        note: Annotated[str, typer.Option(help="why (shown with the change)")] = "") -> None:
    """Propose a new category: prints the open cases it would move and the past decisions it would alter.
    Nothing applies until `bastion designation confirm CHANGE_ID`."""
    from bastion.designations.services import entity_by_name, propose_change

    mod = _moderation()
    entity = entity_by_name(mod, name)
    change = propose_change(mod, entity["id"], category, note=note, actor=cli_actor())
    _print_change(change)
    _awaiting(change)


@designation_app.command("confirm")
def designation_confirm(change_id: Annotated[int, typer.Argument(help="the change's id, from designation change, "
                                                                      "edit or delist")]) -> None:
    """Apply a change another person proposed: a category (open cases, banks' entries), links, or a delisting."""
    from bastion.designations.services import applied, confirm_change

    err.print(applied(confirm_change(_moderation(), change_id, actor=cli_actor())), highlight=False)


@designation_app.command("reject")
def designation_reject(change_id: Annotated[int, typer.Argument(help="the change's id")]) -> None:
    """Reject a proposed change: nothing is applied."""
    from bastion.designations.services import reject_change

    change = reject_change(_moderation(), change_id, actor=cli_actor())
    if change["state"] != "rejected":
        fail(f"change {change_id} is {change['state']}")
    err.print(f"change {change_id} rejected", highlight=False)
