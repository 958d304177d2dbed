"""/v1/exchanges over real HTTP: configure (admins), list and fetch (curators), restricted exchanges hidden outside
child safety, credentials never answered, problem+json for bad input and for a server without the extra."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.exchanges.models import Exchange
from bastion.matching import services as banks
from bastion.matching.models import BankEntry
from tests.factories.exchanges import TE_GROUP, TE_TOKEN, FakeNcmec, FakeThreatExchange

Headers = Callable[[Role], dict[str, str]]


@pytest.fixture
def configured(client: TestClient, db: Database, admin: Principal, auth_header: Headers,
               threatexchange: FakeThreatExchange, monkeypatch: pytest.MonkeyPatch) -> FakeThreatExchange:
    monkeypatch.setenv("TEST_TE_TOKEN", TE_TOKEN)
    banks.create_bank(db, "TERROR", actor=admin)
    threatexchange.put(1, "a" * 64, time=1_760_000_001)
    threatexchange.put(2, "b" * 64, time=1_760_000_002)
    threatexchange.put(3, "c" * 64, time=1_760_000_003)
    r = client.post("/v1/exchanges", headers=auth_header(Role.ADMIN), json={
        "name": "te", "kind": "fb_threatexchange", "bank": "TERROR", "categories": ["terrorism"],
        "settings": {"privacy_group": TE_GROUP, "base_url": threatexchange.url}, "credentials_env": "TEST_TE_TOKEN"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["credentials_present"] is True and TE_TOKEN not in r.text
    assert (body["bank"], body["fetched"], body["entries"]) == ("TERROR", False, 0)
    return threatexchange


def test_a_curator_fetches_and_sees_the_counts(client: TestClient, configured: FakeThreatExchange,
                                               auth_header: Headers) -> None:
    curator = auth_header(Role.CURATOR)
    r = client.post("/v1/exchanges/te/fetch", headers=curator)
    assert r.status_code == 200, r.text
    assert r.json() == {"pages": 2, "records": 3, "added": 3, "removed": 0, "skipped": 0, "complete": True}
    listed = client.get("/v1/exchanges", headers=curator).json()
    assert listed["available"] is True
    [te] = listed["exchanges"]
    assert (te["records_fetched"], te["entries"], te["progress"], te["last_error"]) == (3, 3, 1_760_000_003, "")
    assert TE_TOKEN not in client.get("/v1/exchanges/te", headers=curator).text
    r = client.post("/v1/match", headers=auth_header(Role.PLATFORM), json={"signal_type": "pdq", "value": "b" * 64})
    assert [m["bank"] for m in r.json()["matches"]] == ["TERROR"]  # live in this process at once


def test_only_admins_configure_and_bad_input_changes_nothing(client: TestClient, db: Database,
                                                             configured: FakeThreatExchange,
                                                             auth_header: Headers) -> None:
    body = {"name": "te2", "kind": "fb_threatexchange", "bank": "TERROR", "settings": {"privacy_group": 1}}
    assert client.post("/v1/exchanges", headers=auth_header(Role.CURATOR), json=body).status_code == 403
    for bad, detail in (({**body, "kind": "telegram"}, None),
                        ({**body, "settings": {}}, "fb_threatexchange needs the setting privacy_group"),
                        ({**body, "signal_types": ["url"]}, "fb_threatexchange brings only pdq, md5; not url"),
                        ({**body, "bank": "NOPE"}, "no bank named 'NOPE'"),
                        ({**body, "name": "te"}, "exchange te exists already"),
                        ({**body, "settings": {"privacy_group": 1, "token": "x"}}, "unknown settings: token"),
                        ({**body, "credentials_env": "BASTION_MEDIA_KEY"},  # never sent to an exchange's URL
                         "credentials_env may not name one of Bastion's own settings (BASTION_...); use TX_... or "
                         "BASTION_EXCHANGE_...")):
        r = client.post("/v1/exchanges", headers=auth_header(Role.ADMIN), json=bad)
        assert r.status_code in (404, 409, 422) and r.headers["content-type"] == "application/problem+json", r.text
        if detail:
            assert r.json()["detail"] == detail
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Exchange)) == 1
    r = client.patch("/v1/exchanges/te", headers=auth_header(Role.ADMIN), json={"interval_seconds": 5})
    assert r.status_code == 422
    r = client.patch("/v1/exchanges/te", headers=auth_header(Role.ADMIN),
                     json={"enabled": False, "interval_seconds": 600, "categories": []})
    assert r.status_code == 200 and (r.json()["enabled"], r.json()["interval_seconds"], r.json()["categories"]) == \
        (False, 600, [])
    assert client.patch("/v1/exchanges/te", headers=auth_header(Role.CURATOR), json={}).status_code == 403


def test_an_exchange_feeding_a_restricted_bank_is_unknown_outside_child_safety(
        client: TestClient, db: Database, admin: Principal, auth_header: Headers, ncmec_hashes: FakeNcmec) -> None:
    banks.create_bank(db, "CSAM_NCMEC", actor=admin, restricted=True)
    r = client.post("/v1/exchanges", headers=auth_header(Role.ADMIN), json={
        "name": "ncmec", "kind": "ncmec", "bank": "CSAM_NCMEC", "settings": {"base_url": ncmec_hashes.url}})
    assert r.status_code == 201, r.text
    curator = auth_header(Role.CURATOR)
    assert client.get("/v1/exchanges", headers=curator).json()["exchanges"] == []
    hidden = client.get("/v1/exchanges/ncmec", headers=curator)
    missing = client.get("/v1/exchanges/nothing", headers=curator)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == "no exchange named 'ncmec'"
    assert client.post("/v1/exchanges/ncmec/fetch", headers=curator).status_code == 404
    specialist = auth_header(Role.CHILD_SAFETY)
    [seen] = client.get("/v1/exchanges", headers=specialist).json()["exchanges"]
    assert (seen["name"], seen["restricted"], seen["credentials_present"]) == ("ncmec", True, False)
    r = client.post("/v1/exchanges/ncmec/fetch", headers=specialist)  # no credentials in this server's environment
    assert r.status_code == 422 and "TX_NCMEC_CREDENTIALS" in r.json()["detail"]


def test_feedback_is_queued_for_the_exchange(client: TestClient, db: Database, configured: FakeThreatExchange,
                                             auth_header: Headers) -> None:
    client.post("/v1/exchanges/te/fetch", headers=auth_header(Role.CURATOR))
    with db.read() as session:
        entry_id = session.scalar(select(BankEntry.id).where(BankEntry.value == "a" * 64))
    r = client.post("/v1/exchanges/feedback", headers=auth_header(Role.CURATOR),
                    json={"entry_id": entry_id, "opinion": "false_positive"})
    assert r.status_code == 202 and r.json() == {"queued_for": ["te"]}
    r = client.post("/v1/exchanges/feedback", headers=auth_header(Role.CURATOR),
                    json={"entry_id": entry_id, "opinion": "maybe"})
    assert r.status_code == 422


def test_without_the_extra_a_fetch_is_a_clear_503(client: TestClient, configured: FakeThreatExchange,
                                                  auth_header: Headers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "threatexchange", None)  # as if python-threatexchange were not installed
    r = client.post("/v1/exchanges/te/fetch", headers=auth_header(Role.CURATOR))
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "exchanges need python-threatexchange: pip install 'bastion[exchanges]'"
    assert client.get("/v1/exchanges", headers=auth_header(Role.CURATOR)).json()["available"] is False


def test_hma_s_exchange_routes_show_bastion_s_exchanges(client: TestClient, db: Database, admin: Principal,
                                                        configured: FakeThreatExchange, ncmec_hashes: FakeNcmec,
                                                        auth_header: Headers) -> None:
    banks.create_bank(db, "CSAM_NCMEC", actor=admin, restricted=True)
    client.post("/v1/exchanges", headers=auth_header(Role.ADMIN), json={
        "name": "ncmec", "kind": "ncmec", "bank": "CSAM_NCMEC", "settings": {"base_url": ncmec_hashes.url}})
    curator = auth_header(Role.CURATOR)
    assert client.get("/c/exchanges", headers=curator).json() == ["te"]
    assert client.get("/c/exchanges", headers=auth_header(Role.CHILD_SAFETY)).json() == ["ncmec", "te"]
    assert "fb_threatexchange" in client.get("/c/exchanges/apis", headers=curator).json()
    te = client.get("/c/exchange/te", headers=curator).json()
    assert (te["api"], te["bank"], te["api_json"]["privacy_group"]) == ("fb_threatexchange", "TERROR", TE_GROUP)
    hidden = client.get("/c/exchange/ncmec", headers=curator)
    assert hidden.status_code == 404 and hidden.json()["message"] == "Exchange 'ncmec' not found"
    client.post("/v1/exchanges/te/fetch", headers=curator)
    with db.read() as session:
        entry_id = session.scalar(select(BankEntry.id).where(BankEntry.value == "a" * 64))
    content = client.get(f"/c/bank/TERROR/content/{entry_id}", headers=curator).json()
    assert content["collab_metadata"] == {"te": [f"HASH_PDQ:{'a' * 64}"]}  # where HMA's clients look for it
