"""``bastion orders`` and ``bastion hub``: keys, trusted senders, registrations, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from bastion.core.auth.services import authenticate_token
from bastion.core.db import Database
from bastion.hub.models import Authority, Provider
from bastion.orders.models import TrustedKey
from bastion.orders.wire import SigningKey


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
