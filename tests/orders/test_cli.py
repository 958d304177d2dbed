"""``bastion orders`` and ``bastion hub``: keys, trusted senders, registrations, as a user runs them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import replace

from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.auth.services import authenticate_token, create_token
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hub.models import Authority, Provider
from bastion.orders.interfaces import SenderRole
from bastion.orders.models import OrderEvent, ReceivedOrder, TrustedKey
from bastion.orders.services import trust_key
from bastion.orders.wire import SigningKey, signed_request
from bastion.web.app import create_app
from tests.factories.orders import make_order

URL = "https://video.example/v/abc123"


def bastion(db: Database, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "BASTION_DATABASE_URL": db.url, "BASTION_HUB_DATABASE_URL": db.url, "CI": "true", **env}
    return subprocess.run([sys.executable, "-m", "bastion", *args], env=full, capture_output=True, text=True,
                          timeout=120)


def test_keygen_then_public_key_then_trust_and_untrust(db: Database) -> None:
    made = bastion(db, "orders", "keygen")
    assert made.returncode == 0, made.stderr
    private = made.stdout.strip()
    key = SigningKey.from_text(private)
    assert key.public_text in made.stderr and private not in made.stderr
    public = bastion(db, "orders", "public-key", BASTION_ORDERS_SIGNING_KEY=private)
    assert public.stdout.strip() == key.public_text
    trusted = bastion(db, "orders", "trust", "eu-hub", "--key", key.public_text, "--answer-url",
                      "http://127.0.0.1:8100/v1/hub/answers")
    assert trusted.returncode == 0, trusted.stderr
    with db.read() as session:
        row = session.get(TrustedKey, key.key_id)
        assert row is not None and row.role == "hub" and row.revoked_at is None
    assert bastion(db, "orders", "untrust", key.key_id).returncode == 0
    again = bastion(db, "orders", "untrust", key.key_id)
    assert again.returncode == 1 and again.stderr.count("\n") == 1


def test_bad_input_is_one_line_and_changes_nothing(db: Database) -> None:
    bad_key = bastion(db, "orders", "trust", "x", "--key", "nope", "--answer-url", "http://h.example/a")
    assert bad_key.returncode == 1 and "Ed25519 public key" in bad_key.stderr and bad_key.stderr.count("\n") == 1
    key = SigningKey.generate().public_text
    no_state = bastion(db, "orders", "trust", "x", "--key", key, "--role", "authority", "--answer-url",
                       "http://h.example/a")
    assert no_state.returncode == 1 and "Member State" in no_state.stderr
    assert bastion(db, "orders", "public-key").returncode == 1
    with db.read() as session:
        assert session.scalars(select(TrustedKey)).first() is None


def test_hub_registers_an_authority_with_its_token_and_a_provider(db: Database) -> None:
    key = SigningKey.generate().public_text
    made = bastion(db, "hub", "authority", "OCLCTIC", "--member-state", "FR", "--key", key)
    assert made.returncode == 0, made.stderr
    principal = authenticate_token(db, made.stdout.strip())
    assert principal is not None and principal.role.value == "authority"
    wrong = bastion(db, "hub", "authority", "X", "--member-state", "US", "--key", key)
    assert wrong.returncode == 1 and "not a Member State" in wrong.stderr
    provider = bastion(db, "hub", "provider", "Video Ltd", "--contact-point", "http://127.0.0.1:8000",
                       "--member-state", "IE", "--key", key, "--language", "en", "--language", "ga")
    assert provider.returncode == 0, provider.stderr
    with db.read() as session:
        authority = session.scalars(select(Authority)).one()
        assert authority.token_actor == principal.actor and authority.member_state == "FR"
        assert session.scalars(select(Provider)).one().languages == ["en", "ga"]


def _received(settings: Settings, db: Database, *references: str) -> None:
    """Orders received by a contact point with auto-execution off, for the content at URL (uploaded first)."""
    hub = SigningKey.generate()
    trust_key(db, name="hub", role=SenderRole.HUB, public_key=hub.public_text, clock=SystemClock(),
              answer_url="http://127.0.0.1:9/v1/hub/answers")
    manual = replace(settings, orders_auto_execute=False, orders_signing_key=SigningKey.generate().to_text())
    with TestClient(create_app(manual, db=db, refresh=False)) as client:
        token = create_token(db, role=Role.PLATFORM, name="p", actor="t")
        assert client.post("/v1/content", headers={"Authorization": f"Bearer {token}"}, data={
            "content_id": "vid-1", "account_id": "a", "account_age": "30", "account_country": "FR",
            "content_type": "text", "text": "a video page", "url": URL}).status_code == 200
        for reference in references:
            body, headers = signed_request(hub, make_order(reference, urls=[URL]), dt.datetime.now(dt.UTC))
            assert client.post("/v1/orders", content=body, headers=headers).json()["state"] == "received"


def _state(db: Database, reference: str) -> str:
    with db.read() as session:
        order = session.get(ReceivedOrder, reference)
        assert order is not None
        return order.state


def test_a_person_executes_or_answers_annex_iii_from_the_cli(settings: Settings, db: Database) -> None:
    _received(settings, db, "HUB-X", "HUB-III")
    env = {"BASTION_MEDIA_KEY": settings.media_key, "BASTION_ACTOR": "dana"}
    done = bastion(db, "orders", "execute", "HUB-X", **env)
    assert done.returncode == 0, done.stderr
    assert _state(db, "HUB-X") == "executed" and "executed" in done.stderr
    again = bastion(db, "orders", "execute", "HUB-X", **env)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "not waiting" in again.stderr
    bad = bastion(db, "orders", "inability", "HUB-III", "--reason", "bored", "--explanation", "x", **env)
    assert bad.returncode == 1 and "--reason" in bad.stderr and bad.stderr.count("\n") == 1
    assert _state(db, "HUB-III") == "received"
    said = bastion(db, "orders", "inability", "HUB-III", "--reason", "manifest_error", "--explanation",
                   "The URL names a news report, not the video.", **env)
    assert said.returncode == 0, said.stderr
    assert _state(db, "HUB-III") == "unable"
    with db.read() as session:
        event = session.scalar(select(OrderEvent).where(OrderEvent.subject == "HUB-III",
                                                        OrderEvent.kind == "order.unable"))
        assert event is not None and event.actor == "cli:dana" and event.data["reason"] == "manifest_error"
    missing = bastion(db, "orders", "execute", "NO-SUCH", **env)
    assert missing.returncode == 1 and "NO-SUCH" in missing.stderr
