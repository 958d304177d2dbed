"""The hub's console over HTTP: who sees which orders, issuing with every Annex I field, CSRF, bad input."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from bastion.core.auth import services as auth
from bastion.core.auth.models import User
from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock, SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.outbox.models import OutboxMessage
from bastion.hub import services
from bastion.hub.app import create_hub_app
from bastion.hub.models import Authority, HubEvent, HubOrder
from bastion.hub.services import HubConflict, HubNotFound
from bastion.orders.wire import (
    SIGNATURE_HEADER,
    ActionTaken,
    AuthoritySignature,
    AuthorityType,
    Clarification,
    Feedback,
    SigningKey,
    Verified,
    key_id,
    load_public_key,
    signed_request,
)
from bastion.web.hub_pages import with_console
from tests.factories.console import PASSWORD, login
from tests.factories.orders import make_order

CLOCK = SystemClock()
#: Six weeks on (Art. 11(3) allows twelve at most), as the form's ``datetime-local`` field sends it.
NON_DISCLOSURE_UNTIL = (dt.datetime.now(dt.UTC) + dt.timedelta(weeks=6)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def hub(settings: Settings, hub_db: Database) -> Iterator[TestClient]:
    app = with_console(create_hub_app(replace(settings, hub_database_url=hub_db.url), db=hub_db, deliver=False))
    with TestClient(app) as client:
        yield client


def _authority(db: Database, name: str, member_state: str) -> Authority:
    return services.register_authority(db, name=name, member_state=member_state,
                                       authority_type=AuthorityType.LAW_ENFORCEMENT,
                                       public_keys=[SigningKey.generate().public_text], clock=CLOCK,
                                       actor="test").authority


@pytest.fixture
def registered(hub_db: Database) -> dict[str, Any]:
    """A provider established in Ireland, the French and German authorities, and one console user for each."""
    provider = services.register_provider(hub_db, name="Bastion Video Ltd", member_state="IE", languages=["en"],
                                          contact_point_url="http://127.0.0.1:9",
                                          public_keys=[SigningKey.generate().public_text], clock=CLOCK)
    out: dict[str, Any] = {"provider": provider}
    for user, name, state in (("fr-officer", "OCLCTIC", "FR"), ("de-officer", "BKA", "DE")):
        out[name] = _authority(hub_db, name, state)
        auth.create_user(hub_db, username=user, password=PASSWORD, role=Role.AUTHORITY, actor="test")
        services.link_user(hub_db, user, name, clock=CLOCK, actor="test")
    return out




def _issue_by_service(db: Database, authority: Authority, reference: str, url: str) -> str:
    order = make_order(reference, urls=[url], member_state=authority.member_state, authority_name=authority.name,
                       contact_point="http://127.0.0.1:9")
    view, _ = services.issue(db, authority, None, order, clock=CLOCK, console_user="someone")
    return str(view["hub_reference"])


def _form(provider_id: int, **overrides: Any) -> dict[str, Any]:
    """Every Annex I field as the console's form sends it."""
    return {"kind": "removal_order", "reference": "FR-CONSOLE-1", "provider": str(provider_id),
            "urls": "https://video.example/v/abc123\nhttps://video.example/v/abc124",
            "content_ids": "vid-1", "reasons": "Video glorifying an attack and calling for further attacks.",
            "material_types": ["incites", "threatens"], "additional_reasons": "Posted during a crisis.",
            "non_disclosure": "on", "non_disclosure_until": NON_DISCLOSURE_UNTIL,
            "authority.file_number": "PN-2026-17", "authority.representative": "Commissaire A. Martin",
            "authority.address": "1 rue de l'Exemple, Paris", "authority.telephone": "+33 1 00 00 00 00",
            "authority.email": "tco@authority.example", "follow_up_contact": "tco@authority.example",
            "redress.body": "Tribunal administratif de Paris", "redress.deadline": "two months from receipt",
            "redress.law": "https://www.legifrance.gouv.fr/", **overrides}


def _count(db: Database, model: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_authority_sees_only_its_own_orders_and_an_admin_sees_all(hub: TestClient, hub_db: Database,
                                                                      registered: dict[str, Any]) -> None:
    fr_order = _issue_by_service(hub_db, registered["OCLCTIC"], "FR-1", "https://video.example/v/1")
    de_order = _issue_by_service(hub_db, registered["BKA"], "DE-1", "https://video.example/v/2")
    _login(hub, hub_db, "fr-officer")
    page = hub.get("/console/hub/orders")
    assert page.status_code == 200 and fr_order in page.text and de_order not in page.text
    assert "'self'" in page.headers["content-security-policy"] and "<script>" not in page.text
    assert hub.get(f"/console/hub/orders/{fr_order}").status_code == 200
    other = hub.get(f"/console/hub/orders/{de_order}")
    assert other.status_code == 404 and "FR-1" not in other.text

    hub.cookies.clear()
    _login(hub, hub_db, "hub-admin", Role.ADMIN)
    page = hub.get("/console/hub/orders")
    assert fr_order in page.text and de_order in page.text
    detail = hub.get(f"/console/hub/orders/{de_order}")
    assert detail.status_code == 200 and "copy to IE for scrutiny" in detail.text
    assert "Send a clarification" not in detail.text
    assert hub.get("/console/hub/orders/new").status_code == 403  # an admin registers; authorities issue


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.CURATOR, Role.ANALYST, Role.PLATFORM])
def test_other_roles_are_refused(hub: TestClient, hub_db: Database, registered: dict[str, Any], role: Role) -> None:
    csrf = _login(hub, hub_db, "someone", role)
    assert hub.get("/console/hub/orders").status_code == 403
    assert hub.get("/console/hub/orders/new").status_code == 403
    r = hub.post("/console/hub/orders", data={**_form(registered["provider"].id), "csrf_token": csrf})
    assert r.status_code == 403 and _count(hub_db, HubOrder) == 0


def test_anonymous_visitors_are_sent_to_login_and_unlinked_authorities_are_refused(
        hub: TestClient, hub_db: Database, registered: dict[str, Any]) -> None:
    r = hub.get("/console/hub/orders", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert hub.post("/console/hub/orders", data=_form(1), follow_redirects=False).status_code == 303
    _login(hub, hub_db, "stray", Role.AUTHORITY)
    r = hub.get("/console/hub/orders")
    assert r.status_code == 403 and "bastion hub authority-user" in r.text


def test_an_order_issued_in_the_console_is_queued_with_who_issued_it(hub: TestClient, hub_db: Database,
                                                                   registered: dict[str, Any]) -> None:
    csrf = _login(hub, hub_db, "fr-officer")
    form = hub.get("/console/hub/orders/new")
    assert form.status_code == 200
    for field in ("reference", "urls", "content_ids", "reasons", "material_types", "additional_reasons",
                  "non_disclosure", "non_disclosure_until", "authority.file_number", "authority.representative",
                  "authority.address", "authority.telephone", "authority.email", "follow_up_contact",
                  "redress.body", "redress.deadline", "redress.law", "provider", "kind"):
        assert f'name="{field}"' in form.text, field
    r = hub.post("/console/hub/orders", data={**_form(registered["provider"].id), "csrf_token": csrf},
                 follow_redirects=False)
    assert r.status_code == 303, r.text
    reference = r.headers["location"].rsplit("/", 1)[1]
    with hub_db.read() as session:
        order = session.get(HubOrder, reference)
        assert order is not None and order.state == "queued" and order.authority_reference == "FR-CONSOLE-1"
        body = order.body
        assert body["contact_point"] == "http://127.0.0.1:9" and body["establishment_member_state"] == "IE"
        assert body["urls"] == ["https://video.example/v/abc123", "https://video.example/v/abc124"]
        assert body["authority"]["name"] == "OCLCTIC" and body["authority"]["type"] == "law_enforcement"
        assert body["non_disclosure_until"].startswith(f"{NON_DISCLOSURE_UNTIL}:00")
        assert body["redress"]["body"] == "Tribunal administratif de Paris"
        issued = session.scalar(select(HubEvent).where(HubEvent.subject == reference,
                                                       HubEvent.kind == "order.issued"))
        assert issued is not None and issued.data["via"] == "console" and issued.data["user"] == "fr-officer"
        sent = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "tco.order"))
        assert sent is not None and sent.payload["message"]["reference"] == reference
    page = hub.get(r.headers["location"])
    assert f"Issued as {reference}" in page.text and "via console by user fr-officer" in page.text

    # The same content again, by another authority's user: linked to the first, not sent again.
    hub.cookies.clear()
    csrf = _login(hub, hub_db, "de-officer")
    again = hub.post("/console/hub/orders", data={**_form(registered["provider"].id, reference="DE-9"),
                                                  "csrf_token": csrf})
    assert again.status_code == 200 and "linked to it and not sent again" in again.text
    assert _count(hub_db, OutboxMessage) == 1


def test_a_referral_from_the_console(hub: TestClient, hub_db: Database, registered: dict[str, Any]) -> None:
    csrf = _login(hub, hub_db, "fr-officer")
    form = _form(registered["provider"].id, kind="referral", reference="FR-REF-1", material_types=[])
    r = hub.post("/console/hub/orders", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    with hub_db.read() as session:
        order = session.scalar(select(HubOrder))
        assert order is not None and order.kind == "referral" and "material_types" not in order.body
    page = hub.get(r.headers["location"])
    assert page.status_code == 200 and "Referral TCO-" in page.text and "Type of material" not in page.text


def test_a_form_without_its_csrf_token_changes_nothing(hub: TestClient, hub_db: Database,
                                                       registered: dict[str, Any]) -> None:
    _login(hub, hub_db, "fr-officer")
    for token in ("", "forged"):
        r = hub.post("/console/hub/orders", data={**_form(registered["provider"].id), "csrf_token": token})
        assert r.status_code == 403 and "did not come from this console" in r.text
    assert _count(hub_db, HubOrder) == 0 and _count(hub_db, OutboxMessage) == 0 and _count(hub_db, HubEvent) == 0


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"reasons": ""}, "f-reasons", "Reasons: fill this in."),
    ({"urls": "not-a-url"}, "f-urls", "Exact URLs (line 1): each must be a full web address starting with https://"),
    ({"urls": ""}, "f-urls", "Exact URLs: give at least one, one per line."),
    ({"material_types": []}, "material_types", "Type of material: tick at least one."),
    ({"authority.email": ""}, "f-authority-email", "Email: fill this in."),
    ({"provider": ""}, "f-provider", "Hosting service provider: choose the provider the order is addressed to."),
    ({"reference": "has spaces"}, "f-reference", "Your reference: letters, digits and . _ : / - only"),
    ({"non_disclosure": ""}, "form-error", "Non-disclosure: tick the box and give the date"),
    ({"non_disclosure_until": "tomorrow"}, "f-non_disclosure_until", "Non-disclosure until: a date and time"),
    ({"authority.telephone": "0" * 51}, "f-authority-telephone", "Telephone: at most 50 characters."),
])
def test_bad_input_is_shown_beside_its_field_and_nothing_is_written(
        hub: TestClient, hub_db: Database, registered: dict[str, Any], overrides: dict[str, Any], field: str,
        message: str) -> None:
    csrf = _login(hub, hub_db, "fr-officer")
    r = hub.post("/console/hub/orders", data={**_form(registered["provider"].id, **overrides), "csrf_token": csrf})
    assert r.status_code == 422, r.text
    assert message in r.text
    assert not re.search(r"String should|List should|should match pattern|Value error|isoformat", r.text)
    if field.startswith("f-"):
        assert re.search(rf'id="{re.escape(field)}"[^>]*aria-invalid="true"', r.text), field
    assert 'value="Tribunal administratif de Paris"' in r.text  # what was typed is kept
    assert _count(hub_db, HubOrder) == 0 and _count(hub_db, OutboxMessage) == 0 and _count(hub_db, HubEvent) == 0


def test_a_clarification_after_an_annex_iii_is_sent_from_the_order_page(hub: TestClient, hub_db: Database,
                                                                        registered: dict[str, Any]) -> None:
    reference = _issue_by_service(hub_db, registered["OCLCTIC"], "FR-3", "https://video.example/v/3")
    with hub_db.write() as session:
        order = session.get(HubOrder, reference)
        assert order is not None
        order.state = "unable"
        order.answer = {"reason": "insufficient_information", "explanation": "No such video at that address.",
                        "authorised_person": "x", "contact_email": "x@y", "signed_at": "2026-11-29T10:00:00+00:00"}
    csrf = _login(hub, hub_db, "fr-officer")
    listed = hub.get("/console/hub/orders").text
    assert "No such video at that address." in listed and "Send a clarification" in listed
    url = f"/console/hub/orders/{reference}/clarification"
    empty = hub.post(url, data={"csrf_token": csrf, "explanation": ""})
    assert empty.status_code == 422 and "Explanation: fill this in." in empty.text
    assert _count(hub_db, OutboxMessage) == 1  # the order only
    r = hub.post(url, data={"csrf_token": csrf, "explanation": "It is vid-3.", "content_ids": "vid-3"},
                 follow_redirects=False)
    assert r.status_code == 303
    with hub_db.read() as session:
        message = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "tco.clarification"))
        assert message is not None and message.payload["message"]["content_ids"] == ["vid-3"]
        clarified = session.scalar(select(HubEvent).where(HubEvent.kind == "order.clarified"))
        assert clarified is not None and clarified.data["user"] == "fr-officer"
    # The other authority cannot clarify it (not its order).
    hub.cookies.clear()
    csrf = _login(hub, hub_db, "de-officer")
    assert hub.post(url, data={"csrf_token": csrf, "explanation": "x"}).status_code == 404


def test_linking_a_user_to_an_authority(hub_db: Database, registered: dict[str, Any]) -> None:
    auth.create_user(hub_db, username="mod", password=PASSWORD, role=Role.MODERATOR, actor="test")
    with pytest.raises(HubConflict):
        services.link_user(hub_db, "mod", "OCLCTIC", clock=CLOCK, actor="test")
    with pytest.raises(HubNotFound):
        services.link_user(hub_db, "nobody", "OCLCTIC", clock=CLOCK, actor="test")
    # Moving a user to another authority: it now acts for that one only.
    services.link_user(hub_db, "fr-officer", "BKA", clock=CLOCK, actor="test")
    with hub_db.read() as session:
        user_id = session.scalar(select(User.id).where(User.username == "fr-officer"))
    assert user_id is not None and services.authority_of_user(hub_db, user_id).name == "BKA"


def _bastion(db: Database, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``bastion`` with the hub's database configured and the platform's pointing nowhere: it must not be used."""
    env = {**os.environ, "BASTION_DATABASE_URL": "sqlite:////nonexistent/never.db",
           "BASTION_HUB_DATABASE_URL": db.url, "CI": "true"}
    return subprocess.run([sys.executable, "-m", "bastion", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_the_cli_creates_a_hub_user_and_links_it(hub_db: Database) -> None:
    _authority(hub_db, "OCLCTIC", "FR")
    made = _bastion(hub_db, "user", "create", "ana", "--role", "authority", "--hub", "--password-stdin",
                          stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    linked = _bastion(hub_db, "hub", "authority-user", "ana", "OCLCTIC")
    assert linked.returncode == 0 and "acts for OCLCTIC (FR)" in linked.stderr
    wrong = _bastion(hub_db, "hub", "authority-user", "ana", "Nobody")
    assert wrong.returncode == 1 and "no registered authority 'Nobody'" in wrong.stderr
    assert wrong.stderr.count("\n") == 1



def test_the_one_hour_clock_runs_from_acknowledgement_and_restarts_with_a_clarification(
        settings: Settings, hub_db: Database, registered: dict[str, Any]) -> None:
    clock = FrozenClock(dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC))
    reference = _issue_by_service(hub_db, registered["OCLCTIC"], "FR-4", "https://video.example/v/4")
    with hub_db.write() as session:
        order = session.get(HubOrder, reference)
        assert order is not None
        order.state, order.acknowledged_at = "delivered", clock.now()
    app = with_console(create_hub_app(replace(settings, hub_database_url=hub_db.url), db=hub_db, deliver=False,
                                      clock=clock))
    with TestClient(app) as hub:
        _login(hub, hub_db, "fr-officer")
        clock.advance(minutes=15)
        row = _row(hub.get("/console/hub/orders").text, reference)
        assert 'data-deadline="2026-11-29T11:00:00+00:00"' in row and "45:00 left" in row
        assert 'src="/static/orders.js"' in hub.get("/console/hub/orders").text
        clock.advance(minutes=50)
        row = _row(hub.get("/console/hub/orders").text, reference)
        assert "overdue by 5:00" in row and 'class="overdue"' in row
        # An Annex III stops the clock; the authority's clarification starts a new hour.
        with hub_db.write() as session:
            order = session.get(HubOrder, reference)
            assert order is not None
            order.state = "unable"
        assert 'class="countdown"' not in _row(hub.get("/console/hub/orders").text, reference)
        services.clarify(hub_db, registered["OCLCTIC"], Clarification(order_reference=reference, explanation="x"),
                         clock=clock)
        row = _row(hub.get("/console/hub/orders").text, reference)
        assert 'data-deadline="2026-11-29T12:05:00+00:00"' in row and "60:00 left" in row
        assert hub.get("/static/orders.js").status_code == 200 and hub.get("/static/live.js").status_code == 200


def _row(html: str, reference: str) -> str:
    start = html.index(f'<tr data-order="{reference}"')
    return html[start:html.index("</tr>", start)]


def test_the_host_member_state_scrutinises_an_order_in_the_console(hub: TestClient, hub_db: Database,
                                                                   registered: dict[str, Any]) -> None:
    reference = _issue_by_service(hub_db, registered["OCLCTIC"], "FR-5", "https://video.example/v/5")
    _authority(hub_db, "Garda", "IE")
    auth.create_user(hub_db, username="ie-officer", password=PASSWORD, role=Role.AUTHORITY, actor="test")
    services.link_user(hub_db, "ie-officer", "Garda", clock=CLOCK, actor="test")
    url = f"/console/hub/orders/{reference}/scrutiny"
    # The issuing authority does not scrutinise its own order: no form, and a post is refused.
    csrf = _login(hub, hub_db, "fr-officer")
    assert 'id="scrutiny"' not in hub.get(f"/console/hub/orders/{reference}").text
    refused = hub.post(url, data={"csrf_token": csrf, "finding": "infringement", "reasons": "x"})
    assert refused.status_code == 404
    hub.cookies.clear()
    csrf = _login(hub, hub_db, "ie-officer")
    assert reference in hub.get("/console/hub/orders").text  # listed to the host State
    assert 'id="scrutiny"' in hub.get(f"/console/hub/orders/{reference}").text
    bad = hub.post(url, data={"csrf_token": csrf, "finding": "", "reasons": ""})
    assert bad.status_code == 422 and "Give your reasons" in bad.text and "Choose whether" in bad.text
    assert hub.post(url, data={"finding": "infringement", "reasons": "x"}).status_code == 403  # no CSRF token
    assert _count(hub_db, OutboxMessage) == 1  # the order only: nothing written by the refused posts
    done = hub.post(url, data={"csrf_token": csrf, "finding": "infringement", "reasons": "News reporting."})
    assert done.status_code == 200 and "The order is ended" in done.text
    with hub_db.read() as session:
        order = session.get(HubOrder, reference)
        assert order is not None and order.state == "ended"
        ended = session.scalar(select(HubEvent).where(HubEvent.kind == "order.ended"))
        assert ended is not None and ended.data["user"] == "ie-officer"
        assert session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "tco.reinstatement")) is not None


def _login(client: TestClient, db: Database, username: str, role: Role | None = None) -> str:
    """The hub's home is its orders page, whatever the role."""
    return login(client, db, username, role, home="/console/hub/orders")


def test_the_order_page_shows_the_authority_s_signature_the_answer_s_section_a_and_a_linked_order_s_outcome(
        hub: TestClient, hub_db: Database, registered: dict[str, Any]) -> None:
    fr, key = registered["OCLCTIC"], SigningKey.generate()
    order = make_order("FR-SIGNED", urls=["https://video.example/v/8"], authority_name="OCLCTIC",
                       contact_point="http://127.0.0.1:9")
    body, headers = signed_request(key, order, dt.datetime.now(dt.UTC))
    signature = AuthoritySignature.of(key.key_id, headers[SIGNATURE_HEADER], body)
    view, _ = services.issue(hub_db, fr, Verified(key.key_id, "n", dt.datetime.now(dt.UTC)), order, clock=CLOCK,
                             signature=signature)
    reference = view["hub_reference"]
    with hub_db.read() as session:
        sent = session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "tco.order"))
        assert sent is not None and sent.payload["authority_signature"] == signature.model_dump()
    provider_key = key_id(load_public_key(registered["provider"].public_keys[0]))
    now = dt.datetime.now(dt.UTC)
    services.record_answer(hub_db, Verified(provider_key, "n", now), Feedback(
        order_reference=reference, addressee="Bastion Video Ltd", issuing_authority="OCLCTIC",
        authority_file_number="PN-FR-SIGNED", provider_reference="cp-77", received_at=now, provider="Bastion Video",
        member_state="IE", authorised_person="On duty", contact_email="cp@example.invalid", signed_at=now,
        action=ActionTaken.REMOVED, action_at=now), clock=CLOCK)
    linked = _issue_by_service(hub_db, registered["BKA"], "DE-LATER", "https://video.example/v/8")

    _login(hub, hub_db, "fr-officer")
    page = hub.get(f"/console/hub/orders/{reference}").text
    assert f"signed by key <code>{key.key_id}</code>" in page
    assert 'class="answer-addressee">Bastion Video Ltd<' in page
    assert 'class="answer-authority">OCLCTIC, file PN-FR-SIGNED<' in page
    hub.cookies.clear()
    _login(hub, hub_db, "de-officer")
    page = hub.get(f"/console/hub/orders/{linked}").text
    assert "none: issued in the console" in page  # the console order carries no authority signature
    outcome = page[page.index('id="linked-order"'):page.index("</section>", page.index('id="linked-order"'))]
    assert reference in outcome and 'class="linked-state">executed<' in outcome
    assert f"removed at {now.isoformat()[:19].replace('T', ' ')} UTC" in outcome and "cp-77" in outcome
    assert "PN-FR-SIGNED" not in page  # the first authority's file number is not the later one's to see


class _Transactions:
    """Counts the transactions begun on a database's engine (each read or write is one)."""

    def __init__(self, db: Database) -> None:
        self.engine, self.count = db.engine, 0

    def _begun(self, _conn: Any) -> None:
        self.count += 1

    def __enter__(self) -> _Transactions:
        event.listen(self.engine, "begin", self._begun)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "begin", self._begun)


def test_a_live_refresh_of_the_console_reads_in_one_transaction(hub: TestClient, hub_db: Database,
                                                                 settings: Settings,
                                                                 registered: dict[str, Any]) -> None:
    """Each open tab fetches its page every two seconds: beside the session check, one read transaction."""
    reference = _issue_by_service(hub_db, registered["OCLCTIC"], "FR-1", "https://video.example/v/1")
    _login(hub, hub_db, "fr-officer")
    cookie = hub.cookies["bastion_session"]
    with _Transactions(hub_db) as session_check:
        assert auth.session_user(hub_db, cookie, settings.session_ttl_seconds, CLOCK) is not None
    for path in ("/console/hub/orders", f"/console/hub/orders/{reference}"):
        with _Transactions(hub_db) as refresh:
            assert hub.get(path).status_code == 200
        assert refresh.count == session_check.count + 1, path
