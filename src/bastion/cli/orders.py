"""Commands for removal orders (TCO): the platform's contact point and the hub."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import HostOption, PortOption, cli_actor, err, fail, guarded, open_db, out, require_free_port
from bastion.core.config import Settings

if TYPE_CHECKING:
    from bastion.orders.services import ContactPoint
    from bastion.orders.wire import InabilityReason

orders_app = typer.Typer(help="Removal orders at this platform's contact point: signing key, trusted senders.",
                         no_args_is_help=True)
hub_app = typer.Typer(help="The hub that carries removal orders from authorities to contact points.",
                      no_args_is_help=True)
app.add_typer(orders_app, name="orders")
app.add_typer(hub_app, name="hub")
Reference = Annotated[str, typer.Argument(help="the order's reference, from bastion orders list")]


@orders_app.command("keygen")
def orders_keygen() -> None:
    """Make an Ed25519 key: the private key alone on stdout (keep it secret), the public key on stderr."""
    from bastion.orders.wire import SigningKey

    key = SigningKey.generate()
    print(key.to_text())
    err.print(f"public key: {key.public_text}  (key id {key.key_id})")


@orders_app.command("public-key")
def orders_public_key(hub: Annotated[bool, typer.Option("--hub", help="the hub's key, not the platform's")] = False,
                      ) -> None:
    """Print the public key of BASTION_ORDERS_SIGNING_KEY (or BASTION_HUB_SIGNING_KEY), to register elsewhere."""
    from bastion.orders.wire import SigningKey

    settings = Settings.from_env()
    text = settings.hub_signing_key if hub else settings.orders_signing_key
    if not text:
        fail(f"{'BASTION_HUB_SIGNING_KEY' if hub else 'BASTION_ORDERS_SIGNING_KEY'} is not set "
             "(make one with: bastion orders keygen)")
    print(guarded(lambda: SigningKey.from_text(text)).public_text)


@orders_app.command("trust")
def orders_trust(name: Annotated[str, typer.Argument(help="a name for the sender, e.g. eu-hub")],
                 key: Annotated[str, typer.Option(help="the sender's Ed25519 public key")],
                 answer_url: Annotated[str, typer.Option(help="where Annex II/III answers go")],
                 role: Annotated[str, typer.Option(help="hub or authority")] = "hub",
                 member_state: Annotated[str, typer.Option(help="an authority's Member State")] = "") -> None:
    """Accept signed orders from a hub's or an authority's key."""
    from bastion.core.clock import SystemClock
    from bastion.orders.interfaces import SenderRole
    from bastion.orders.services import trust_key

    sender = guarded(lambda: SenderRole(role))
    db = open_db()
    row = trust_key(db, name=name, role=sender, public_key=key, clock=SystemClock(), member_state=member_state,
                    answer_url=answer_url)
    err.print(f"trusted {row.role} {row.name!r} (key id {row.key_id})")


@orders_app.command("untrust")
def orders_untrust(key_id: Annotated[str, typer.Argument(help="the key id that orders trust printed")]) -> None:
    """Stop accepting orders signed by a key (orders already received are kept)."""
    from bastion.core.clock import SystemClock
    from bastion.orders.services import revoke_key

    if not revoke_key(open_db(), key_id, clock=SystemClock()):
        fail(f"no trusted key {key_id}")
    err.print(f"key {key_id} no longer trusted")


@orders_app.command("list")
def orders_list(as_json: Annotated[bool, typer.Option("--json", help="the orders as one JSON array")] = False) -> None:
    """Orders received, overdue first, with the time left on their hour."""
    from bastion.core.clock import SystemClock
    from bastion.orders.services import received_orders

    rows = received_orders(open_db(), SystemClock().now())
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("reference", "state", "received", "seconds left", "overdue", "action")
    for r in rows:
        table.add_row(str(r["reference"]), str(r["state"]), str(r["received_at"])[:19], str(r["seconds_left"] or ""),
                      "yes" if r["overdue"] else "", str(r["action"] or ""))
    out.print(table)


def _contact_point() -> ContactPoint:
    """The contact point as the server configures it (``BASTION_ORDERS_*``), on the platform's database."""
    from bastion.core.clock import SystemClock
    from bastion.matching.matcher import Matcher
    from bastion.moderation.kernel import Moderation
    from bastion.moderation.policy import DEFAULT_POLICY_PATH, PolicyFile
    from bastion.orders.services import contact_point_for

    settings = Settings.from_env()
    db = open_db()
    mod = Moderation(db, Matcher(db), PolicyFile(settings.policy_path or DEFAULT_POLICY_PATH), SystemClock(),
                     settings.platform_webhook_url, sealer=guarded(settings.media_sealer))
    return guarded(lambda: contact_point_for(settings, mod))


def _waiting(cp: ContactPoint, reference: str) -> None:
    """Refuse, in one line, an order that is not waiting for action (already executed, answered, a referral)."""
    from bastion.orders.services import get_order

    order = get_order(cp, reference)
    if order["kind"] != "removal_order" or order["state"] != "received":
        fail(f"order {reference} is {order['state']}{' (a referral)' if order['kind'] == 'referral' else ''}, "
             "not waiting for action; nothing was done")


@orders_app.command("execute")
def orders_execute(reference: Reference) -> None:
    """Carry out a received order now: remove (or disable) its content and send the Annex II feedback.

    For a contact point with BASTION_ORDERS_AUTO_EXECUTE=0, where a person confirms each order within its hour.
    """
    from bastion.orders.services import execute

    cp = _contact_point()
    _waiting(cp, reference)
    state = execute(cp, reference, actor=cli_actor().actor)
    if state == "unable":
        fail(f"no content on this service matches order {reference}: an Annex III (insufficient information) was "
             "sent instead; the hour waits for the authority's clarification")
    err.print(f"order {reference} {state}; the Annex II feedback is queued for the sender")


@orders_app.command("inability")
def orders_inability(reference: Reference,
                     reason: Annotated[str, typer.Option(
                         help="force_majeure, manifest_error or insufficient_information (Annex III section B)")],
                     explanation: Annotated[str, typer.Option(help="what stops you; the authority reads it")]) -> None:
    """Answer a received order with Annex III: it cannot be executed, and why. The hour waits for a clarification."""
    from bastion.orders.services import declare_inability
    from bastion.orders.wire import InabilityReason

    why = guarded(lambda: _inability_reason(reason, InabilityReason))
    if not 1 <= len(explanation.strip()) <= 5000:
        fail("--explanation: say what stops you executing the order (1 to 5,000 characters)")
    cp = _contact_point()
    _waiting(cp, reference)
    declare_inability(cp, reference, why, explanation.strip(), actor=cli_actor().actor)
    err.print(f"order {reference}: Annex III ({why.value}) queued for the sender")


def _inability_reason(text: str, reasons: type[InabilityReason]) -> InabilityReason:
    try:
        return reasons(text)
    except ValueError:
        raise ValueError(f"--reason: {text!r} is not one of {', '.join(r.value for r in reasons)}") from None


@hub_app.command("serve")
def hub_serve(host: HostOption = "127.0.0.1", port: PortOption = 8100) -> None:
    """Run the hub (BASTION_HUB_DATABASE_URL, BASTION_HUB_SIGNING_KEY)."""
    from bastion.core.serving import serve as run_server
    from bastion.hub.app import create_hub_app
    from bastion.web.hub_pages import with_console

    settings = Settings.from_env()
    if not settings.hub_signing_key:
        fail("BASTION_HUB_SIGNING_KEY is not set (make one with: bastion orders keygen)")
    require_free_port(host, port)
    open_db(settings.hub_database_url)
    run_server(with_console(create_hub_app(settings)), host=host, port=port, log_level="info", access_log=False)


@hub_app.command("authority")
def hub_authority(name: Annotated[str, typer.Argument(help="the authority's name, e.g. OCLCTIC")],
                  member_state: Annotated[str, typer.Option(help="e.g. FR")],
                  key: Annotated[list[str], typer.Option(help="Ed25519 public key (repeatable)")],
                  authority_type: Annotated[str, typer.Option("--type", help="judicial, law_enforcement, other")]
                  = "law_enforcement") -> None:
    """Register a competent authority; its API token (role authority) is printed alone on stdout, once."""
    from bastion.core.clock import SystemClock
    from bastion.hub.services import register_authority
    from bastion.orders.wire import AuthorityType

    kind = guarded(lambda: AuthorityType(authority_type))
    db = open_db(Settings.from_env().hub_database_url)
    done = register_authority(db, name=name, member_state=member_state, authority_type=kind, public_keys=key,
                              clock=SystemClock(), actor=cli_actor().actor)
    print(done.token)
    err.print(f"authority {name!r} ({done.authority.member_state}) registered")


@hub_app.command("authority-user")
def hub_authority_user(username: Annotated[str, typer.Argument(help="a hub console user (role authority)")],
                       authority: Annotated[str, typer.Argument(help="a registered authority's name")]) -> None:
    """Let a hub console user (bastion user create NAME --role authority --hub) act for a registered authority."""
    from bastion.core.clock import SystemClock
    from bastion.hub.services import link_user

    db = open_db(Settings.from_env().hub_database_url)
    found = link_user(db, username, authority, clock=SystemClock(), actor=cli_actor().actor)
    err.print(f"user {username!r} acts for {found.name} ({found.member_state}) in the hub's console")


@hub_app.command("provider")
def hub_provider(name: Annotated[str, typer.Argument(help="the provider's name, as orders address it")],
                 contact_point: Annotated[str, typer.Option(help="the platform's base URL")],
                 member_state: Annotated[str, typer.Option(help="Member State of establishment")],
                 key: Annotated[list[str], typer.Option(help="Ed25519 public key (repeatable)")],
                 language: Annotated[list[str] | None, typer.Option(help="accepted language (repeatable)")] = None,
                 ) -> None:
    """Register a hosting service provider and its contact point."""
    from bastion.core.clock import SystemClock
    from bastion.hub.services import register_provider

    db = open_db(Settings.from_env().hub_database_url)
    provider = register_provider(db, name=name, contact_point_url=contact_point, member_state=member_state,
                                 languages=language or ["en"], public_keys=key, clock=SystemClock())
    err.print(f"provider {provider.name!r} registered; orders go to {provider.contact_point_url}/v1/orders")


