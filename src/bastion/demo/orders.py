"""The removal-order step of ``bastion demo``: a hub and the platform on loopback, one order carried end to end.

Both run as real HTTP servers in this process, each with its own database (the hub's is a file in the demo's
work directory, made afresh each run) and a fresh Ed25519 key. An invented authority orders the removal of a demo
upload; the platform removes it through the moderation actions and its Annex II feedback is shown from the hub.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from bastion.core import production
from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.hub import services as hub
from bastion.hub.app import create_hub_app
from bastion.orders import services as orders
from bastion.orders.interfaces import SenderRole
from bastion.orders.wire import AuthorityType, RemovalOrder, SigningKey, signed_request
from bastion.web.app import create_app

CLOCK = SystemClock()
#: How long the demo waits for the feedback before saying it did not come (it takes well under a second).
WAIT_SECONDS = 30.0


@contextmanager
def _serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yields its base URL once it answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 30
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("a demo server did not start")
            time.sleep(0.02)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Silence ``logger``'s warnings for a while."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _order(reference: str, url: str, contact_point: str) -> RemovalOrder:
    return RemovalOrder.model_validate({
        "reference": reference, "issuing_member_state": "FR", "addressee": "Bastion demo platform",
        "contact_point": contact_point, "establishment_member_state": "IE", "issued_at": CLOCK.now().isoformat(),
        "urls": [url], "reasons": "Demo: a post calling for attacks (invented content).",
        "material_types": ["incites"],
        "authority": {"type": "law_enforcement", "name": "Demo authority (FR)", "member_state": "FR",
                      "file_number": reference, "email": "tco@authority.example"},
        "follow_up_contact": "tco@authority.example",
        "redress": {"body": "Demo administrative court", "deadline": "two months from receipt"}})


def run_orders_demo(db: Database, workdir: Path, settings: Settings, *, console: Console) -> dict[str, Any]:
    """Carry one removal order from an authority through the hub to this platform and back; returns the hub's view."""
    hub_file = workdir / "hub.db"
    hub_file.unlink(missing_ok=True)
    hub_url = f"sqlite:///{hub_file}"
    migrate(hub_url)
    hub_db = Database(hub_url)
    platform_key, hub_key, authority_key = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    run = uuid.uuid4().hex[:8]
    content_url = f"https://bastion-demo.example/v/{run}"
    fast = replace(settings, outbox_interval_seconds=0.05)
    with ExitStack() as stack:
        stack.enter_context(_quiet(logging.getLogger(production.__name__)))  # a demo is not a production start
        platform = stack.enter_context(_serve(create_app(
            replace(fast, database_url=db.url, orders_signing_key=platform_key.to_text()), db=db)))
        hub_base = stack.enter_context(_serve(create_hub_app(
            replace(fast, hub_database_url=hub_url, hub_signing_key=hub_key.to_text()), db=hub_db)))
        console.print(f"\n[bold]Removal orders[/bold]: a hub ({hub_base}) and this platform's contact point "
                      f"({platform}), both inside this demo: they stop when it ends (run your own with "
                      "bastion hub serve and bastion serve) ...")
        orders.trust_key(db, name=f"demo hub {run}", role=SenderRole.HUB, public_key=hub_key.public_text,
                         clock=CLOCK, answer_url=f"{hub_base}/v1/hub/answers")
        hub.register_provider(hub_db, name="Bastion demo platform", contact_point_url=platform, member_state="IE",
                              languages=["en"], public_keys=[platform_key.public_text], clock=CLOCK)
        token = hub.register_authority(hub_db, name="Demo authority (FR)", member_state="FR",
                                       authority_type=AuthorityType.LAW_ENFORCEMENT,
                                       public_keys=[authority_key.public_text], clock=CLOCK, actor="demo").token
        platform_token = auth.create_token(db, role=Role.PLATFORM, name="demo upload", actor="demo")
        upload = httpx.post(f"{platform}/v1/content", headers={"Authorization": f"Bearer {platform_token}"}, data={
            "content_id": f"demo-order-{run}", "account_id": "demo-account", "account_age": "30",
            "account_country": "FR", "content_type": "text", "text": "Demo post (invented).", "url": content_url})
        upload.raise_for_status()
        body, headers = signed_request(authority_key, _order(f"FR-DEMO-{run}", content_url, platform), CLOCK.now())
        issued = httpx.post(f"{hub_base}/v1/hub/orders", content=body,
                            headers={**headers, "Authorization": f"Bearer {token}"})
        issued.raise_for_status()
        reference = issued.json()["hub_reference"]
        view = hub.get_order(hub_db, None, reference)
        deadline = time.monotonic() + WAIT_SECONDS
        while view["state"] != hub.HubState.EXECUTED and time.monotonic() < deadline:
            time.sleep(0.05)
            view = hub.get_order(hub_db, None, reference)
    hub_db.dispose()
    _show(view, console=console)
    return view


#: The hub's view of an order: each step's label and the key of its time.
STEPS = (("issued by the authority", "issued_at"), ("sent by the hub", "sent_at"),
         ("received (contact point's clock)", "received_at"), ("content removed", "action_at"),
         ("acknowledged by the contact point", "acknowledged_at"), ("Annex II feedback at the hub", "answered_at"))


def timeline(view: dict[str, Any]) -> list[tuple[str, str]]:
    """The steps in the order they happened (the contact point acknowledges after it has acted, since it acts on
    receipt); steps that have not happened come last, in their usual order."""
    done = sorted(((str(view[key]), label) for label, key in STEPS if view.get(key)), key=lambda step: step[0])
    return [(label, at[:26]) for at, label in done] + [(label, "-") for label, key in STEPS if not view.get(key)]


def _show(view: dict[str, Any], *, console: Console) -> None:
    table = Table("step", "at (UTC)", title=f"removal order {view['hub_reference']} ({view['state']})")
    for label, at in timeline(view):
        table.add_row(label, at)
    console.print(table)
    if view["state"] != hub.HubState.EXECUTED:
        console.print("[red]the feedback did not arrive in time[/red]")
        return
    seconds = (dt.datetime.fromisoformat(view["answered_at"]) - dt.datetime.fromisoformat(view["issued_at"]))
    console.print(f"order executed and answered in {seconds.total_seconds():.2f} s (the law allows one hour)")
