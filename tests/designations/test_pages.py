"""The console page: a senior moderator sees the preview of a change before anything applies, then confirms it;
a moderator reads the page but has no buttons, and may not post them."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.db import Database
from tests.designations.conftest import Header, queue_of
from tests.factories.console import login


def test_a_change_previewed_and_confirmed_in_the_console(client: TestClient, db: Database, auth_header: Header,
                                                         world: dict[str, Any]) -> None:
    csrf = login(client, db, "sam", Role.SENIOR_MODERATOR)
    entity = world["entity"]["id"]
    page = client.get("/console/designations")
    assert page.status_code == 200 and "Black Banner Front" in page.text and 'href="/console/designations"' in page.text
    proposed = client.post(f"/console/designations/{entity}/changes", data={
        "csrf_token": csrf, "category": "violent_extremism", "note": "EU Council list"}, follow_redirects=False)
    assert proposed.status_code == 303
    page = client.get("/console/designations").text
    change = re.search(r'data-change="(\d+)"', page)
    assert change is not None
    preview = page[page.index('class="open-cases"'):page.index('class="past-decisions"')]
    assert "copy" in preview and "named" in preview and "terrorism" in preview and "unrelated" not in preview
    assert queue_of(client, auth_header, "copy") == ["general"]  # nothing applied by the preview

    # four eyes: the proposer is told another person confirms, and has no button for it
    assert "Confirm and apply" not in page and "another senior moderator or an admin confirms it" in page
    refused = client.post(f"/console/designations/changes/{change.group(1)}/confirm", data={"csrf_token": csrf},
                          follow_redirects=False)
    assert queue_of(client, auth_header, "copy") == ["general"] and refused.status_code in (303, 403)
    client.post("/logout", data={"csrf_token": csrf})
    csrf = login(client, db, "kim", Role.SENIOR_MODERATOR)
    assert "Confirm and apply" in client.get("/console/designations").text
    without_token = client.post(f"/console/designations/changes/{change.group(1)}/confirm", data={},
                                follow_redirects=False)
    assert without_token.status_code in (400, 403)
    assert queue_of(client, auth_header, "copy") == ["general"]
    confirmed = client.post(f"/console/designations/changes/{change.group(1)}/confirm", data={"csrf_token": csrf},
                            follow_redirects=False)
    assert confirmed.status_code == 303
    assert queue_of(client, auth_header, "copy")[-1] == "terrorism"
    assert "Moved 2 open case(s)" in client.get("/console/designations").text


def test_a_moderator_reads_without_buttons(client: TestClient, db: Database, world: dict[str, Any]) -> None:
    csrf = login(client, db, "mo", Role.MODERATOR)
    page = client.get("/console/designations")
    assert page.status_code == 200 and "Black Banner Front" in page.text
    assert "Preview a change" not in page.text
    refused = client.post(f"/console/designations/{world['entity']['id']}/changes",
                          data={"csrf_token": csrf, "category": "violent_extremism"}, follow_redirects=False)
    assert refused.status_code == 403


def test_a_delisted_entity_is_marked(client: TestClient, db: Database, world: dict[str, Any]) -> None:
    proposed = client.post(f"/v1/designations/{world['entity']['id']}/delist", headers=world["senior"],
                           json={"delisted_on": "2026-12-01"})
    assert proposed.status_code == 202
    login(client, db, "mo", Role.MODERATOR)
    page = client.get("/console/designations").text
    assert "delist from 2026-12-01" in page and 'class="badge delisted"' not in page
    assert client.post(f"/v1/designations/changes/{proposed.json()['id']}/confirm",
                       headers=world["second"]).status_code == 200
    page = client.get("/console/designations").text
    assert 'class="badge delisted">delisted 2026-12-01<' in page and "Delisted from 2026-12-01." in page
