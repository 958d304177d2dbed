"""The hub's registration and reading routes: roles, clear errors, what each authority may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hub.app import create_hub_app
from bastion.hub.models import Authority, Provider
from bastion.orders.wire import SigningKey, signed_request
from tests.factories.orders import make_order


@pytest.fixture
def hub(settings: Settings, hub_db: Database) -> Iterator[TestClient]:
    configured = replace(settings, hub_signing_key=SigningKey.generate().to_text())
    with TestClient(create_hub_app(configured, db=hub_db, deliver=False)) as client:
        yield client


def _admin(db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.create_token(db, role=Role.ADMIN, name='a', actor='t')}"}


def test_registration_needs_an_admin_and_valid_fields(hub: TestClient, hub_db: Database) -> None:
    key = SigningKey.generate().public_text
    body = {"name": "OCLCTIC", "member_state": "FR", "authority_type": "law_enforcement", "public_keys": [key]}
    assert hub.post("/v1/hub/authorities", json=body).status_code == 401
    curator = {"Authorization": f"Bearer {auth.create_token(hub_db, role=Role.CURATOR, name='c', actor='t')}"}
    assert hub.post("/v1/hub/authorities", json=body, headers=curator).status_code == 403
    admin = _admin(hub_db)
    bad = hub.post("/v1/hub/authorities", json={**body, "public_keys": ["nope"]}, headers=admin)
    assert bad.status_code == 422 and "Ed25519" in bad.json()["detail"]
    assert hub.post("/v1/hub/authorities", json={**body, "member_state": "US"}, headers=admin).status_code == 422
    assert hub.post("/v1/hub/authorities", json=body, headers=admin).status_code == 201
    assert hub.post("/v1/hub/authorities", json=body, headers=admin).status_code == 409
    provider = {"name": "Video Ltd", "contact_point_url": "ftp://x", "member_state": "IE", "public_keys": [key]}
    assert hub.post("/v1/hub/providers", json=provider, headers=admin).status_code == 422
    with hub_db.read() as session:
        assert session.query(Authority).count() == 1 and session.query(Provider).count() == 0


def test_an_authority_sees_its_orders_and_those_it_may_scrutinise_only(hub: TestClient, hub_db: Database) -> None:
    admin = _admin(hub_db)
    platform = SigningKey.generate()
    assert hub.post("/v1/hub/providers", headers=admin, json={
        "name": "Bastion Video Ltd", "contact_point_url": "https://platform.example", "member_state": "IE",
        "public_keys": [platform.public_text]}).status_code == 201
    tokens, keys = {}, {}
    for name, state in (("OCLCTIC", "FR"), ("BKA", "DE"), ("Garda", "IE")):
        keys[name] = SigningKey.generate()
        r = hub.post("/v1/hub/authorities", headers=admin, json={
            "name": name, "member_state": state, "authority_type": "law_enforcement",
            "public_keys": [keys[name].public_text]})
        tokens[name] = {"Authorization": f"Bearer {r.json()['token']}"}
    order = make_order("FR-1", contact_point="https://platform.example")
    body, headers = signed_request(keys["OCLCTIC"], order, dt.datetime.now(dt.UTC))
    issued = hub.post("/v1/hub/orders", content=body, headers={**headers, **tokens["OCLCTIC"]})
    assert issued.status_code == 201 and issued.json()["state"] == "queued"
    reference = issued.json()["hub_reference"]
    german = make_order("DE-1", contact_point="https://platform.example")  # says FR: not BKA's to issue
    body, headers = signed_request(keys["BKA"], german, dt.datetime.now(dt.UTC))
    assert hub.post("/v1/hub/orders", content=body, headers={**headers, **tokens["BKA"]}).status_code == 403
    seen = {name: [o["hub_reference"] for o in hub.get("/v1/hub/orders", headers=t).json()]
            for name, t in tokens.items()}
    assert seen == {"OCLCTIC": [reference], "BKA": [], "Garda": [reference]}  # Garda: the host State's copy
    assert hub.get(f"/v1/hub/orders/{reference}", headers=tokens["BKA"]).status_code == 404
    assert len(hub.get("/v1/hub/orders", headers=admin).json()) == 1
    assert hub.post(f"/v1/hub/orders/{reference}/scrutiny", json={"infringement": False, "reasons": "fine"},
                    headers=tokens["Garda"]).json()["state"] == "queued"


def test_scrutiny_is_refused_after_72_hours(hub_db: Database) -> None:
    from bastion.core.clock import FrozenClock
    from bastion.hub import services
    from bastion.orders.wire import AuthorityType, Verified

    clock = FrozenClock(dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC))
    key = SigningKey.generate().public_text
    services.register_provider(hub_db, name="Bastion Video Ltd", contact_point_url="https://platform.example",
                               member_state="IE", languages=["en"], public_keys=[key], clock=clock)
    fr = services.register_authority(hub_db, name="OCLCTIC", member_state="FR", clock=clock, actor="t",
                                     authority_type=AuthorityType.LAW_ENFORCEMENT, public_keys=[key]).authority
    ie = services.register_authority(hub_db, name="Garda", member_state="IE", clock=clock, actor="t",
                                     authority_type=AuthorityType.JUDICIAL, public_keys=[key]).authority
    view, _ = services.issue(hub_db, fr, Verified("k", "n", clock.now()),
                             make_order("FR-1", contact_point="https://platform.example"), clock=clock)
    clock.advance(hours=72, seconds=1)
    with pytest.raises(services.HubConflict, match="72 hours"):
        services.scrutinise(hub_db, ie, view["hub_reference"], infringement=True, reasons="late", clock=clock)


def test_an_oversized_body_is_refused_before_it_is_read(hub: TestClient) -> None:
    r = hub.post("/v1/hub/answers", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
