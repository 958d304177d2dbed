"""A crisis shares its confirmed perpetrator content with the exchanges an admin named, end to end over HTTP against
the fake ThreatExchange on loopback: only admins name them, only exchanges that take shared hashes, a refused
activation leaves nothing behind (not even its bank), a 5xx retried, a 4xx kept, every answer on the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.exchanges import services as exchanges
from bastion.exchanges.interfaces import ExchangeKind
from bastion.matching import services as banks
from bastion.matching.models import Bank
from bastion.web.app import create_app
from tests.factories.console import login
from tests.factories.exchanges import TE_GROUP, TE_TOKEN, FakeThreatExchange, threatexchange  # noqa: F401
from tests.factories.media import make_image
from tests.feed.conftest import Header, pdq, until, upload


@pytest.fixture
def sharing_client(settings: Settings, db: Database, admin: Principal, threatexchange: FakeThreatExchange,  # noqa: F811
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TEST_TE_TOKEN", TE_TOKEN)
    banks.create_bank(db, "TERROR", actor=admin)
    exchanges.add_exchange(db, exchanges.NewExchange(
        "te", ExchangeKind.THREATEXCHANGE, "TERROR", settings={"privacy_group": str(TE_GROUP),
                                                               "base_url": threatexchange.url},
        credentials_env="TEST_TE_TOKEN"), actor=admin)
    banks.create_bank(db, "HASHLIST", actor=admin)
    exchanges.add_exchange(db, exchanges.NewExchange("tat", ExchangeKind.TAT, "HASHLIST"), actor=admin)
    with TestClient(create_app(settings, db=db)) as c:
        yield c


def bank_names(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.scalars(select(Bank.name)))


def confirm_removal(client: TestClient, h: Header, content_id: str) -> None:
    assert client.post("/v1/notices", json={"content_id": content_id, "category": "terrorist_content",
                                            "explanation": "perpetrator's video", "notifier": "u"},
                       headers=h(Role.PLATFORM)).status_code == 201
    mod = h(Role.MODERATOR)
    case = client.post("/v1/queues/terrorism/claim", headers=mod).json()
    assert client.post(f"/v1/cases/{case['id']}/decision", json={"violation": True, "actions": ["remove"]},
                       headers=mod).status_code == 200


@pytest.mark.parametrize(("role", "share_with", "status"), [
    (Role.SENIOR_MODERATOR, ["te"], 403),  # naming exchanges is their administrators' decision
    (Role.ADMIN, ["nope"], 404),
    (Role.ADMIN, ["tat"], 422),  # Tech Against Terrorism's hash list takes no uploads
])
def test_a_refused_activation_leaves_nothing_behind(sharing_client: TestClient, auth_header: Header, db: Database,
                                                    role: Role, share_with: list[str], status: int) -> None:
    r = sharing_client.post("/v1/crises", json={"protocol": "internal", "reference": "ECP-9", "countries": ["FR"],
                                                "share_with": share_with}, headers=auth_header(role))
    assert r.status_code == status, r.text
    assert sharing_client.get("/v1/crises", headers=auth_header(Role.ADMIN)).json() == []
    assert "CRISIS_ECP_9" not in bank_names(db)


def test_bad_known_material_leaves_no_bank(sharing_client: TestClient, auth_header: Header, db: Database) -> None:
    r = sharing_client.post("/v1/crises", json={"protocol": "internal", "reference": "ECP-9", "countries": ["FR"],
                                                "material": [{"signal_type": "pdq", "value": "zz"}]},
                            headers=auth_header(Role.ADMIN))
    assert r.status_code == 422 and "material" in r.text
    assert "CRISIS_ECP_9" not in bank_names(db)


def test_confirmed_perpetrator_content_is_shared_and_every_answer_shown(
        sharing_client: TestClient, auth_header: Header, db: Database, threatexchange: FakeThreatExchange,  # noqa: F811
        tmp_path: Path) -> None:
    client, admin = sharing_client, auth_header(Role.ADMIN)
    r = client.post("/v1/crises", json={"protocol": "eu_crisis_protocol", "reference": "ECP-9", "countries": ["DE"],
                                        "share_with": ["te"]}, headers=admin)
    assert r.status_code == 201, r.text
    crisis = r.json()
    assert crisis["share_with"] == ["te"]
    clip = make_image(tmp_path / "clip.jpg", seed=73, size=(640, 480))
    upload(client, auth_header, "clip-1", clip)
    threatexchange.script.fail_on["threat_descriptors"] = 503  # the first upload fails; the outbox retries it
    confirm_removal(client, auth_header, "clip-1")

    def events(kind: str) -> list[str]:
        found = client.get(f"/v1/crises/{crisis['id']}", headers=admin).json()["events"]
        return [e["summary"] for e in found if e["kind"] == kind]

    shared = until(lambda: len(events("crisis.hash_shared")) == 2 and events("crisis.hash_shared"), seconds=30)
    assert shared and all("accepted by te as 900000" in s for s in shared), shared
    # its PDQ and its file's MD5 go; ThreatExchange takes no SHA-256
    assert events("crisis.perpetrator_banked")[0].endswith("shared: te: sha256 not taken; te: 2 queued")
    sent = {u["type"]: u for u in threatexchange.uploads}
    assert sorted(sent) == ["HASH_MD5", "HASH_PDQ"]
    assert (sent["HASH_PDQ"]["indicator"], sent["HASH_PDQ"]["privacy_members"]) == (pdq(clip), str(TE_GROUP))
    assert sent["HASH_PDQ"]["tags"].split(",") == ["crisis:ECP-9", "terrorist_content", "violent_extremism"]
    assert "clip-1" not in sent["HASH_PDQ"]["description"]  # the platform's content ids stay with the platform

    other = make_image(tmp_path / "other.jpg", seed=74, size=(640, 480))
    upload(client, auth_header, "clip-2", other)
    threatexchange.script.fail_on["threat_descriptors"] = 400  # refused: kept as a failure, not retried
    confirm_removal(client, auth_header, "clip-2")
    shared = until(lambda: len(events("crisis.hash_shared")) == 4 and events("crisis.hash_shared"), seconds=30)
    assert shared, events("crisis.hash_shared")
    refused = [s for s in shared if "not accepted" in s]
    assert len(refused) == 1 and "not accepted by te (HTTP 400): ThreatExchange answered HTTP 400" in refused[0]
    assert len(threatexchange.uploads) == 3
    # five POSTs in all: the first clip's 503, its retry and its other hash; the second clip's 400 and its other hash
    assert sum("threat_descriptors" in call for call in threatexchange.script.calls) == 5

    login(client, db, "sam", Role.SENIOR_MODERATOR)
    page = client.get(f"/console/crises/{crisis['id']}").text
    assert "accepted by te as 900000" in page and "HTTP 400" in page
    assert 'class="crisis-share">te<' in client.get("/console/crises").text
