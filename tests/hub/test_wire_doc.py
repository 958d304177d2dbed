"""``docs/wire.md`` is enough to write a client from: its worked example is read from the page and checked here,
step by step with an implementation of our own of what the page says, and against a running hub."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hub import services as hub
from bastion.hub.app import create_hub_app
from bastion.orders.wire import (
    SIGNATURE_HEADER,
    AuthorityType,
    RemovalOrder,
    SigningKey,
    key_id,
    load_public_key,
    parse,
    verify,
)
from bastion.web.app import create_app

WIRE = Path(__file__).parents[2] / "docs" / "wire.md"


def _block(info: str) -> str:
    """The fenced block of ``docs/wire.md`` whose info string is ``info``."""
    found = re.search(rf"^```{re.escape(info)}\n(.*?)\n```$", WIRE.read_text(), re.S | re.M)
    assert found is not None, f"docs/wire.md has no ```{info} block"
    return found.group(1)


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    values = dict(line.split(": ", 1) for line in _block("text worked-example").splitlines())
    values["body"] = _block("json worked-example-body")
    return values


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_worked_example_follows_from_the_page_step_by_step(example: dict[str, str]) -> None:
    seed = base64.urlsafe_b64decode(example["private key"] + "=")
    private = Ed25519PrivateKey.from_private_bytes(seed)
    assert seed.hex() == "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"  # RFC 8032, test 1
    assert _b64(private.public_key().public_bytes_raw()) == example["public key"]
    # the key id: SHA-256 of the public key's text, first 16 hex digits; Bastion's own derivation agrees
    assert hashlib.sha256(example["public key"].encode()).hexdigest()[:16] == example["key id"]
    assert key_id(load_public_key(example["public key"])) == example["key id"]
    body = example["body"].encode()
    assert len(body) == 625 and hashlib.sha256(body).hexdigest() == example["body_sha256"]
    statement = json.dumps({"body_sha256": example["body_sha256"], "key": example["key id"],
                            "nonce": example["nonce"], "t": int(example["t"]), "v": 1},
                           sort_keys=True, separators=(",", ":"))
    assert statement == example["statement"]
    assert _b64(private.sign(statement.encode())) == example["sig"]
    assert example["Bastion-Ed25519"] == (f"key={example['key id']},t={example['t']},nonce={example['nonce']},"
                                          f"sig={example['sig']}")
    assert dt.datetime.fromtimestamp(int(example["t"]), dt.UTC) == dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC)


def test_the_python_client_on_the_page_makes_the_example_header(example: dict[str, str]) -> None:
    namespace: dict[str, object] = {}
    exec(_block("python"), namespace)  # our own documentation's code
    seed = base64.urlsafe_b64decode(example["private key"] + "=")
    header = namespace["signature_header"](seed, example["body"].encode(), int(example["t"]),  # type: ignore[operator]
                                           example["nonce"])
    assert header == example["Bastion-Ed25519"]


def test_bastion_verifies_the_example_and_reads_its_body(example: dict[str, str]) -> None:
    body = example["body"].encode()
    public = load_public_key(example["public key"])
    verified = verify({SIGNATURE_HEADER: example["Bastion-Ed25519"]}, body, keys={example["key id"]: public}.get,
                      now=dt.datetime.fromtimestamp(int(example["t"]) + 299, dt.UTC))
    assert verified.nonce == example["nonce"]
    order = parse(json.loads(body))
    assert isinstance(order, RemovalOrder) and order.contact_point == "https://platform.example"


@pytest.fixture
def hub_client(settings: Settings, hub_db: Database, example: dict[str, str]) -> Iterator[tuple[TestClient, str]]:
    clock = FrozenClock(dt.datetime.fromtimestamp(int(example["t"]) + 30, dt.UTC))
    hub.register_provider(hub_db, name="Video Ltd", contact_point_url="https://platform.example",
                          member_state="IE", languages=["en"], public_keys=[SigningKey.generate().public_text],
                          clock=clock)
    token = hub.register_authority(hub_db, name="OCLCTIC", member_state="FR", clock=clock, actor="test",
                                   authority_type=AuthorityType.LAW_ENFORCEMENT,
                                   public_keys=[example["public key"]]).token
    configured = replace(settings, hub_signing_key=SigningKey.generate().to_text())
    with TestClient(create_hub_app(configured, db=hub_db, clock=clock, deliver=False)) as client:
        yield client, token


def test_the_hub_takes_the_example_as_the_page_says(hub_client: tuple[TestClient, str],
                                                    example: dict[str, str]) -> None:
    client, token = hub_client
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               SIGNATURE_HEADER: example["Bastion-Ed25519"]}
    first = client.post("/v1/hub/orders", content=example["body"].encode(), headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["state"] == "queued" and re.fullmatch(r"TCO-[0-9A-F]{16}", first.json()["hub_reference"])
    replayed = client.post("/v1/hub/orders", content=example["body"].encode(), headers=headers)
    assert replayed.status_code == 409 and replayed.json()["reason"] == "replayed"
    seed = base64.urlsafe_b64decode(example["private key"] + "=")
    again = SigningKey.from_text(_b64(seed)).headers(example["body"].encode(),
                                                     dt.datetime.fromtimestamp(int(example["t"]), dt.UTC))
    resent = client.post("/v1/hub/orders", content=example["body"].encode(), headers={**headers, **again})
    assert resent.status_code == 200 and resent.json()["hub_reference"] == first.json()["hub_reference"]


SIGNED_ROUTES = {"hub": [("/v1/hub/orders", "post"), ("/v1/hub/answers", "post"),
                         ("/v1/hub/orders/{reference}/clarification", "post")],
                 "platform": [("/v1/orders", "post")]}


def _openapi(settings: Settings, hub_db: Database, db: Database, which: str) -> dict[str, object]:
    if which == "hub":
        app = create_hub_app(settings, db=hub_db, deliver=False)
    else:
        app = create_app(settings, db=db, refresh=False)
    with TestClient(app) as client:
        document: dict[str, object] = client.get("/openapi.json").json()
    return document


@pytest.mark.parametrize("which", ["hub", "platform"])
def test_openapi_describes_the_signed_bodies_and_the_answers(settings: Settings, hub_db: Database, db: Database,
                                                            which: str) -> None:
    document = _openapi(settings, hub_db, db, which)
    paths = document["paths"]  # type: ignore[index]
    for path, method in SIGNED_ROUTES[which]:
        operation = paths[path][method]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        variants = schema.get("oneOf", [schema])
        assert all(set(v["required"]) == {"type", "message"} for v in variants), path
        assert any(p["name"] == SIGNATURE_HEADER and p["in"] == "header" for p in operation["parameters"]), path
        assert "$defs" not in json.dumps(schema), path  # stands alone in the document
    schemas = document["components"]["schemas"]  # type: ignore[index]
    if which == "hub":
        order = paths["/v1/hub/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        removal = next(v for v in order["oneOf"] if v["properties"]["type"]["const"] == "removal_order")
        assert "contact_point" in removal["properties"]["message"]["required"]
        assert paths["/v1/hub/orders"]["post"]["responses"]["201"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/HubOrderIssued"}
        listed = paths["/v1/hub/orders"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert listed["items"] == {"$ref": "#/components/schemas/HubOrderView"}
        assert "events" in schemas["HubOrderDetail"]["properties"]
        assert set(schemas["HubState"]["enum"]) == {s.value for s in hub.HubState}
    else:
        received = paths["/v1/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        kinds = {v["properties"]["type"]["const"] for v in received["oneOf"]}
        assert kinds == {"removal_order", "referral", "clarification", "reinstatement"}
        assert "authority_signature" in next(v for v in received["oneOf"]
                                             if v["properties"]["type"]["const"] == "removal_order")["properties"]
        assert paths["/v1/orders"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Ack"}
        assert "seconds_left" in schemas["OrderView"]["properties"]
        assert "events" in schemas["OrderDetail"]["properties"]
