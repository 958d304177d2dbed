"""The hub: register authorities and providers, carry orders to contact points, collect the answers.

An order is written with its outbox message in one transaction, so an accepted order is never lost; the outbox
retries until the contact point acknowledges (2xx), and ``HubSender`` records when each order was first sent and
when it was acknowledged. A later order from any authority for a URL an active order of the same provider already
covers is linked to it and not sent again; the later authority is told in the answer. When the provider is
established in another Member State, that State's authorities may scrutinise the order for 72 hours (Art. 4); a
finding of infringement ends the order and the provider is told to reinstate the content.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.core import eu
from bastion.core.auth import services as auth
from bastion.core.auth.models import User
from bastion.core.auth.roles import Role
from bastion.core.clock import Clock
from bastion.core.db import Database
from bastion.core.events import history
from bastion.core.outbox.kinds import MessageKind
from bastion.core.outbox.services import Claim, Sender, SendResult, enqueue
from bastion.hub import events
from bastion.hub.events import HubChange, HubEventKind, HubState, next_state
from bastion.hub.interfaces import HubConflict, HubError, HubForbidden, HubNotFound, InvalidHubRequest
from bastion.hub.models import Authority, AuthorityUser, HubEvent, HubOrder, HubOrderUrl, Provider
from bastion.orders.wire import (
    AUTHORITY_SIGNATURE,
    AuthoritySignature,
    AuthorityType,
    Clarification,
    Feedback,
    Inability,
    Referral,
    Reinstatement,
    RemovalOrder,
    Verified,
    contact_point_base,
    envelope,
    key_id,
    load_public_key,
)

__all__ = ["HubConflict", "HubError", "HubForbidden", "HubNotFound", "HubState", "InvalidHubRequest"]


class HubMessage(MessageKind):
    """What the hub sends to contact points, each signed with the hub's Ed25519 key. Values are storage keys."""

    ORDER = "tco.order"
    CLARIFICATION = "tco.clarification"
    REINSTATEMENT = "tco.reinstatement"


ORDER_KIND = HubMessage.ORDER
SCRUTINY_HOURS = 72
#: Serialises order issue on PostgreSQL, so two authorities ordering the same URL at once are linked, not both sent.
ISSUE_LOCK = 0x7C0_0004


log = logging.getLogger(__name__)

def _event(session: Session, reference: str, actor: str, at: dt.datetime, data: events.HubPayload) -> None:
    events.write(session, reference, actor, at, data)


def _via(console_user: str) -> dict[str, Any]:
    """Who took a step in the console (an authority's person); nothing by API, where a key or token says who."""
    return {"via": "console", "user": console_user} if console_user else {}


def _check_keys(keys: list[str]) -> list[str]:
    if not keys:
        raise InvalidHubRequest("at least one Ed25519 public key is needed")
    for key in keys:
        try:
            load_public_key(key)
        except ValueError as exc:
            raise InvalidHubRequest(str(exc)) from None
    return [k.strip() for k in keys]


def _member_state(text: str) -> str:
    try:
        return eu.member_state(text)
    except ValueError as exc:
        raise InvalidHubRequest(str(exc)) from None



# --- registration -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    """A new authority and the API token it issues orders with (shown once)."""

    authority: Authority
    token: str


def register_authority(db: Database, *, name: str, member_state: str, authority_type: AuthorityType,
                       public_keys: list[str], clock: Clock, actor: str) -> Registered:
    keys, state = _check_keys(public_keys), _member_state(member_state)
    with db.read() as session:
        if session.scalar(select(Authority.id).where(Authority.name == name)) is not None:
            raise HubConflict(f"an authority named {name!r} is registered already")
    token = auth.create_token(db, role=Role.AUTHORITY, name=f"authority {name}", actor=actor, clock=clock)
    principal = auth.authenticate_token(db, token)
    assert principal is not None
    try:
        with db.write() as session:
            authority = Authority(name=name, member_state=state, authority_type=authority_type.value,
                                  token_actor=principal.actor, public_keys=keys, created_at=clock.now())
            session.add(authority)
    except IntegrityError:  # registered at the same moment by someone else: their registration stands
        auth.revoke_token(db, principal.id, actor=actor, clock=clock)  # no token left without an authority
        raise HubConflict(f"an authority named {name!r} is registered already") from None
    return Registered(authority, token)


def register_provider(db: Database, *, name: str, contact_point_url: str, member_state: str, languages: list[str],
                      public_keys: list[str], clock: Clock) -> Provider:
    keys, state = _check_keys(public_keys), _member_state(member_state)
    if not contact_point_url.startswith(("http://", "https://")):
        raise InvalidHubRequest("the contact point must be an absolute http(s) URL")
    try:
        with db.write() as session:
            provider = Provider(name=name, contact_point_url=contact_point_base(contact_point_url), member_state=state,
                                languages=[lang.lower() for lang in languages] or ["en"], public_keys=keys,
                                created_at=clock.now())
            session.add(provider)
        return provider
    except IntegrityError:
        raise HubConflict(f"a provider named {name!r} is registered already") from None


def authority_of(db: Database, actor: str) -> Authority:
    with db.read() as session:
        authority = session.scalar(select(Authority).where(Authority.token_actor == actor))
    if authority is None:
        raise HubForbidden("this token belongs to no registered authority")
    return authority


def link_user(db: Database, username: str, authority_name: str, *, clock: Clock, actor: str) -> Authority:
    """Let the console user ``username`` (role authority) act for the authority ``authority_name``.

    Linking again moves the user to the new authority; the hub's audit trail is the event log of the orders
    they issue, each naming the user.
    """
    with db.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise HubNotFound(f"no console user {username!r} (create one with: bastion user create --hub)")
        if user.role != Role.AUTHORITY:
            raise HubConflict(f"user {username!r} has role {user.role}; only a user of role authority acts for one")
        authority = session.scalar(select(Authority).where(Authority.name == authority_name))
        if authority is None:
            raise HubNotFound(f"no registered authority {authority_name!r}")
        link = session.get(AuthorityUser, user.id)
        if link is None:
            session.add(AuthorityUser(user_id=user.id, authority_id=authority.id, linked_by=actor,
                                      linked_at=clock.now()))
        else:
            link.authority_id, link.linked_by, link.linked_at = authority.id, actor, clock.now()
        return authority


def authority_of_user(db: Database, user_id: int) -> Authority:
    """The authority a console user acts for; ``HubForbidden`` for a user linked to none."""
    with db.read() as session:
        return _authority_of_user(session, user_id)


def _authority_of_user(session: Session, user_id: int) -> Authority:
    authority = session.scalar(select(Authority).join(AuthorityUser, AuthorityUser.authority_id == Authority.id)
                               .where(AuthorityUser.user_id == user_id))
    if authority is None:
        raise HubForbidden("your account acts for no registered authority; ask the hub's admin to link it "
                           "(bastion hub authority-user)")
    return authority


def providers(db: Database) -> list[Provider]:
    """Every registered provider, by name: the addressees an authority chooses from."""
    with db.read() as session:
        return list(session.scalars(select(Provider).order_by(Provider.name)))


def key_lookup(public_keys: list[str]) -> Mapping[str, Ed25519PublicKey]:
    keys = [load_public_key(k) for k in public_keys]
    return {key_id(k): k for k in keys}


def provider_key_lookup(db: Database) -> Mapping[str, Ed25519PublicKey]:
    """Every registered provider's keys (answers are checked against the order's provider afterwards)."""
    with db.read() as session:
        return {kid: key for p in session.scalars(select(Provider)) for kid, key in key_lookup(p.public_keys).items()}


# --- issuing ------------------------------------------------------------------------------------------------------


def order_view(session: Session, order: HubOrder) -> dict[str, Any]:
    authority = session.get(Authority, order.authority_id)
    provider = session.get(Provider, order.provider_id)
    iso = {name: (value.isoformat() if value else None) for name, value in (
        ("issued_at", order.issued_at), ("sent_at", order.sent_at), ("acknowledged_at", order.acknowledged_at),
        ("received_at", order.received_at), ("answered_at", order.answered_at), ("action_at", order.action_at),
        ("scrutiny_until", order.scrutiny_until))}
    return {"hub_reference": order.hub_reference, "kind": order.kind, "state": order.state,
            "authority": authority.name if authority else None, "authority_reference": order.authority_reference,
            "provider": provider.name if provider else None, "linked_to": order.linked_to, "answer": order.answer,
            "scrutiny_member_state": order.scrutiny_member_state or None,
            "authority_key_id": order.authority_key_id or None, **iso}


#: What a later authority is not shown of the answer to the order its own was linked to: the first authority's own
#: file number is that authority's business; the state, the times and the provider's answer are what it needs.
_NOT_SHOWN_TO_LATER = frozenset({"authority_file_number"})


def linked_outcome(session: Session, order: HubOrder) -> dict[str, Any] | None:
    """The outcome of the earlier order ``order`` is linked to, as its (later) authority sees it: the earlier
    order's state, when the provider received it and acted, and its Annex II or III answer. ``None`` if unlinked."""
    earlier = session.get(HubOrder, order.linked_to) if order.linked_to else None
    if earlier is None:
        return None
    authority = session.get(Authority, earlier.authority_id)
    answer = {k: v for k, v in (earlier.answer or {}).items() if k not in _NOT_SHOWN_TO_LATER}
    return {"hub_reference": earlier.hub_reference, "authority": authority.name if authority else None,
            "state": earlier.state, "received_at": earlier.received_at.isoformat() if earlier.received_at else None,
            "action_at": earlier.action_at.isoformat() if earlier.action_at else None,
            "answered_at": earlier.answered_at.isoformat() if earlier.answered_at else None,
            "answer": answer or None}


def _forwarded(order: HubOrder, provider: Provider) -> dict[str, Any]:
    """The envelope the hub sends the provider: the order under the hub's reference and to the provider's registered
    contact point, with the issuing authority's own signature beside it when it was issued by API."""
    message = (RemovalOrder if order.kind == "removal_order" else Referral).model_validate(order.body)
    sent = message.model_copy(update={"reference": order.hub_reference, **(
        {"contact_point": provider.contact_point_url} if isinstance(message, RemovalOrder) else {})})
    payload = envelope(sent)
    if order.authority_key_id and order.authority_signed_body is not None:
        payload[AUTHORITY_SIGNATURE] = AuthoritySignature.of(order.authority_key_id, order.authority_signature,
                                                             order.authority_signed_body).model_dump()
    return payload


#: The states of an order that a later order for the same content may ride on: it is on its way to the provider,
#: there, or executed. A failed, unable or ended order takes nothing down, so nothing may wait on it.
CARRIES = frozenset({HubState.QUEUED, HubState.DELIVERED, HubState.EXECUTED})


def _earlier_order(session: Session, provider_id: int, urls: list[str], content_ids: list[str]) -> HubOrder | None:
    """An order in force for the same provider that names every one of ``urls`` and ``content_ids``: the new order
    adds nothing to send. An order naming some new content too is sent (the contact point leaves content already
    down alone), and so is one whose earlier order failed, could not be executed or ended (``CARRIES``)."""
    wanted = set(urls)
    covering = (select(HubOrderUrl.hub_reference)
                .where(HubOrderUrl.provider_id == provider_id, HubOrderUrl.url.in_(wanted))
                .group_by(HubOrderUrl.hub_reference)
                .having(func.count(func.distinct(HubOrderUrl.url)) == len(wanted)))
    candidates = session.scalars(
        select(HubOrder).where(HubOrder.hub_reference.in_(covering), HubOrder.linked_to.is_(None),
                               HubOrder.kind == "removal_order",
                               HubOrder.state.in_([state.value for state in CARRIES]))
        .order_by(HubOrder.issued_at, HubOrder.hub_reference))
    for candidate in candidates:
        if set(content_ids) <= set(candidate.body.get("content_ids") or []):
            return candidate
    return None


def issue(db: Database, authority: Authority, verified: Verified | None, message: RemovalOrder | Referral, *,
          clock: Clock, console_user: str = "", signature: AuthoritySignature | None = None,
          ) -> tuple[dict[str, Any], bool]:
    """Accept an order or referral from ``authority``. Returns (view, created).

    By API it comes signed with one of the authority's keys (``verified``, and ``signature``: the header and the
    exact body, kept and forwarded so the provider can check the authority's signature too); from the console it
    comes from a logged-in user acting for the authority (``console_user``, recorded on the issued event) and no
    signature.
    """
    if signature is not None and (verified is None or signature.key_id != verified.key_id):
        raise HubForbidden("the authority's signature must be the verified one")
    if message.issuing_member_state != authority.member_state:
        raise HubForbidden(f"{authority.name} issues for {authority.member_state}, not {message.issuing_member_state}")
    now = clock.now()
    kind: Literal["removal_order", "referral"] = "removal_order" if isinstance(message, RemovalOrder) else "referral"
    with db.write() as session:
        db.serialize_writers(session, ISSUE_LOCK)
        existing = session.scalar(select(HubOrder).where(HubOrder.authority_id == authority.id,
                                                         HubOrder.authority_reference == message.reference))
        if existing is not None:
            if existing.body != message.model_dump(mode="json"):
                raise HubConflict(f"reference {message.reference!r} was issued before with different content")
            return order_view(session, existing), False
        provider = _provider_for(session, message)
        reference = f"TCO-{uuid.uuid4().hex[:16].upper()}"
        order = HubOrder(hub_reference=reference, kind=kind, authority_id=authority.id,
                         authority_reference=message.reference, provider_id=provider.id,
                         body=message.model_dump(mode="json"), state=next_state(None, HubChange.ISSUE).value,
                         issued_at=now, updated_at=now)
        if signature is not None:
            order.authority_key_id, order.authority_signature = signature.key_id, signature.header
            order.authority_signed_body = signature.body
        session.add(order)
        actor = f"authority:{authority.name}"
        via = _via(console_user) or {"via": "api", "key": verified.key_id if verified else ""}
        _event(session, reference, actor, now, events.Issued(kind=kind, urls=len(message.urls), **via))
        earlier = (_earlier_order(session, provider.id, list(message.urls), list(message.content_ids))
                   if isinstance(message, RemovalOrder) else None)
        session.add_all([HubOrderUrl(hub_reference=reference, provider_id=provider.id, url=url)
                         for url in message.urls])
        if earlier is not None:
            order.state = next_state(HubState(order.state), HubChange.LINK).value
            order.linked_to = earlier.hub_reference
            _event(session, reference, "hub", now, events.Linked(linked_to=earlier.hub_reference))
            _event(session, earlier.hub_reference, "hub", now, events.AlsoOrdered(by=authority.name,
                                                                                  hub_reference=reference))
        else:
            enqueue(session, kind=ORDER_KIND, destination=provider.contact_point_url + "/v1/orders",
                    payload=_forwarded(order, provider), idempotency_key=f"{ORDER_KIND}:{reference}", clock=clock)
        if isinstance(message, RemovalOrder) and provider.member_state != message.issuing_member_state:
            order.scrutiny_member_state = provider.member_state
            order.scrutiny_until = now + dt.timedelta(hours=SCRUTINY_HOURS)
            _event(session, reference, "hub", now, events.CopyToHost(member_state=provider.member_state,
                                                                     until=order.scrutiny_until))
        session.flush()
        view = order_view(session, order)
        if earlier is not None:
            view["linked_order"] = linked_outcome(session, order)
        return view, True


def _provider_for(session: Session, message: RemovalOrder | Referral) -> Provider:
    if isinstance(message, RemovalOrder):
        found = session.scalar(select(Provider).where(
            Provider.contact_point_url == contact_point_base(message.contact_point)))
        if found is not None:
            return found
    found = session.scalar(select(Provider).where(Provider.name == message.addressee))
    if found is None:
        raise HubNotFound(f"no registered provider {message.addressee!r} (by contact point or name)")
    return found


# --- delivery records ---------------------------------------------------------------------------------------------


class HubSender:
    """Wraps the signed webhook sender to record when each order was first sent and when it was acknowledged.

    Each write is its own short transaction around the network call, never across it. A crash after the
    acknowledgement but before it is recorded only means the outbox sends again and the contact point, which
    knows the reference, answers the same: the acknowledgement is then recorded.
    """

    def __init__(self, db: Database, inner: Sender, clock: Clock) -> None:
        self.db, self.inner, self.clock = db, inner, clock

    def send(self, claim: Claim) -> SendResult:
        if claim.kind != ORDER_KIND:
            return self.inner.send(claim)
        result = self._send_order(claim)
        if result.status == 401:  # a stale signature (clock skew) or a key not registered there yet: worth retrying
            result = SendResult(ok=False, error=f"HTTP 401 {result.error or ''}".strip())
        return result

    def on_dead(self, claim: Claim, result: SendResult) -> None:
        """The outbox gave up on this order: say so on the order, where the authority looks, not only in a log."""
        if claim.kind != ORDER_KIND:
            return
        reference = str(claim.payload["message"]["reference"])
        with self.db.write() as session:
            self.db.serialize_writers(session, ISSUE_LOCK)
            order = session.get(HubOrder, reference)
            _event(session, reference, "hub", self.clock.now(), events.DeliveryFailed(
                attempt=claim.attempts, status=result.status, error=(result.error or "")[:500]))
            current = HubState(order.state) if order is not None else None
            if order is not None and current is not None and next_state(current, HubChange.FAIL) is not current:
                order.state, order.updated_at = next_state(current, HubChange.FAIL).value, self.clock.now()
                _release_linked(session, order, self.clock.now(), self.clock,
                                reason="the order it was linked to could not be delivered")
        log.error("order %s could not be delivered: %s", reference, result.error or result.status)

    def _send_order(self, claim: Claim) -> SendResult:
        reference = str(claim.payload["message"]["reference"])
        with self.db.write() as session:
            order = session.get(HubOrder, reference)
            if order is not None and order.sent_at is None:
                order.sent_at = self.clock.now()
            _event(session, reference, "hub", self.clock.now(), events.Sent(attempt=claim.attempts))
        result = self.inner.send(claim)
        if result.ok:
            with self.db.write() as session:
                order = session.get(HubOrder, reference)
                if order is not None and order.acknowledged_at is None:
                    order.acknowledged_at = self.clock.now()
                    order.state = next_state(HubState(order.state), HubChange.ACKNOWLEDGE).value
                    _event(session, reference, "hub", self.clock.now(), events.Acknowledged(status=result.status))
        return result


# --- answers, clarifications, scrutiny ----------------------------------------------------------------------------


def record_answer(db: Database, verified: Verified, message: Feedback | Inability, *, clock: Clock) -> dict[str, Any]:
    """An Annex II or III from the order's provider (checked by key). A repeat changes nothing."""
    now = clock.now()
    with db.write() as session:
        db.serialize_writers(session, ISSUE_LOCK)
        order = session.get(HubOrder, message.order_reference)
        if order is None:
            raise HubNotFound(f"no order {message.order_reference!r}")
        provider = session.get(Provider, order.provider_id)
        if provider is None or verified.key_id not in key_lookup(provider.public_keys):
            raise HubForbidden("only the order's provider may answer it")
        answer = message.model_dump(mode="json")
        current = HubState(order.state)
        if current is HubState.EXECUTED and isinstance(message, Inability):
            # a late or reordered Annex III never undoes an Annex II: the content was removed
            _event(session, order.hub_reference, f"provider:{provider.name}", now, events.InabilityReceived(
                answer=message, ignored="the order was executed already"))
            return order_view(session, order)
        if order.answer != answer:
            order.answer, order.answered_at, order.received_at = answer, now, message.received_at
            if order.acknowledged_at is None:  # the answer proves receipt even if the 2xx was lost
                order.acknowledged_at = now
            order.action_at = message.action_at if isinstance(message, Feedback) else None
            change = HubChange.FEEDBACK if isinstance(message, Feedback) else HubChange.INABILITY
            order.state, order.updated_at = next_state(current, change).value, now
            _event(session, order.hub_reference, f"provider:{provider.name}", now,
                   events.FeedbackReceived(answer=message) if isinstance(message, Feedback)
                   else events.InabilityReceived(answer=message))
            if order.state == HubState.UNABLE:  # the content is still up: each later order goes on its own
                _release_linked(session, order, now, clock,
                                reason="the provider could not execute the order it was linked to")
        return order_view(session, order)


def _own_order(session: Session, authority: Authority, reference: str) -> HubOrder:
    order = session.get(HubOrder, reference)
    if order is None or order.authority_id != authority.id:
        raise HubNotFound(f"no order {reference!r} of {authority.name}")
    return order


def clarify(db: Database, authority: Authority, message: Clarification, *, clock: Clock,
            console_user: str = "") -> dict[str, Any]:
    """Forward the authority's clarification after an Annex III; the provider's clock restarts on receipt.
    ``console_user`` names the console user who sent it (by API it is signed instead)."""
    now = clock.now()
    with db.write() as session:
        order = _own_order(session, authority, message.order_reference)
        state = next_state(HubState(order.state), HubChange.CLARIFY, reference=order.hub_reference)
        provider = session.get(Provider, order.provider_id)
        assert provider is not None
        count = len(list(session.scalars(select(HubEvent.id).where(
            HubEvent.subject == order.hub_reference, HubEvent.kind == HubEventKind.CLARIFIED.value))))
        enqueue(session, kind=HubMessage.CLARIFICATION, destination=provider.contact_point_url + "/v1/orders",
                payload=envelope(message), idempotency_key=f"tco.clarification:{order.hub_reference}:{count + 1}",
                clock=clock)
        order.state, order.updated_at = state.value, now
        _event(session, order.hub_reference, f"authority:{authority.name}", now,
               events.Clarified(explanation=message.explanation, **_via(console_user)))
        return order_view(session, order)


def scrutinise(db: Database, authority: Authority, reference: str, *, infringement: bool, reasons: str,
               clock: Clock, console_user: str = "") -> dict[str, Any]:
    """Art. 4: the host Member State's authority decides within 72 hours; an infringement ends the order.
    ``console_user`` names the console user who decided (by API the token says who)."""
    now = clock.now()
    with db.write() as session:
        db.serialize_writers(session, ISSUE_LOCK)
        order = session.get(HubOrder, reference)
        if order is None or order.scrutiny_member_state != authority.member_state:
            raise HubNotFound(f"no order {reference!r} awaiting scrutiny by {authority.member_state}")
        if order.scrutiny_until is None or now > order.scrutiny_until:
            raise HubConflict(f"the 72 hours to scrutinise {reference} have passed")
        current = HubState(order.state)
        ended = next_state(current, HubChange.END)
        if ended is current:  # ended already: a second finding changes nothing
            return order_view(session, order)
        actor = f"authority:{authority.name}"
        if not infringement:
            _event(session, reference, actor, now, events.ScrutinyCleared(reasons=reasons, **_via(console_user)))
            return order_view(session, order)
        provider = session.get(Provider, order.provider_id)
        assert provider is not None
        was_linked = current is HubState.LINKED
        order.state, order.updated_at = ended.value, now
        _event(session, reference, actor, now, events.Ended(reasons=reasons, **_via(console_user)))
        if not was_linked:  # a linked order never reached the provider: there is nothing there to reinstate
            notice = Reinstatement(order_reference=reference, member_state=authority.member_state, reasons=reasons,
                                   decided_at=now)
            enqueue(session, kind=HubMessage.REINSTATEMENT, destination=provider.contact_point_url + "/v1/orders",
                    payload=envelope(notice), idempotency_key=f"tco.reinstatement:{reference}", clock=clock)
        # the later authorities' orders now stand alone: after the reinstatement of the ended order, not before it
        # (the content comes back, then each takes it down again under its own authority; a reinstatement arriving
        # second would undo their removal)
        _release_linked(session, order, now, clock, reason="the order it was linked to ended", delay=UNLINKED_DELAY)
        return order_view(session, order)


#: How long an order that stood linked to an ended one waits before it is sent on its own.
UNLINKED_DELAY = dt.timedelta(seconds=60)


def _release_linked(session: Session, earlier: HubOrder, now: dt.datetime, clock: Clock, *, reason: str,
                    delay: dt.timedelta = dt.timedelta(0)) -> None:
    """Send on its own every order that stood linked to ``earlier``, which no longer carries them (``CARRIES``).

    The caller holds ``ISSUE_LOCK``, so no order is linked to ``earlier`` after its state changed and before this.
    """
    provider = session.get(Provider, earlier.provider_id)
    assert provider is not None
    for waiting in session.scalars(select(HubOrder).where(HubOrder.linked_to == earlier.hub_reference,
                                                          HubOrder.state == HubState.LINKED.value)):
        waiting.state = next_state(HubState(waiting.state), HubChange.UNLINK, reference=waiting.hub_reference).value
        waiting.linked_to, waiting.updated_at = None, now
        message_row = enqueue(session, kind=ORDER_KIND, destination=provider.contact_point_url + "/v1/orders",
                              payload=_forwarded(waiting, provider),
                              idempotency_key=f"{ORDER_KIND}:{waiting.hub_reference}", clock=clock)
        if delay:
            message_row.next_attempt_at = now + delay
        _event(session, waiting.hub_reference, "hub", now, events.Unlinked(reason=reason,
                                                                           was_linked_to=earlier.hub_reference))


def list_orders(db: Database, authority: Authority | None, *, limit: int = 500) -> list[dict[str, Any]]:
    """An authority sees its own orders and those it may scrutinise; an admin (``None``) sees all."""
    with db.read() as session:
        return _orders(session, authority, limit)


def _orders(session: Session, authority: Authority | None, limit: int = 500) -> list[dict[str, Any]]:
    query = select(HubOrder).order_by(HubOrder.issued_at.desc()).limit(limit)
    if authority is not None:
        query = query.where((HubOrder.authority_id == authority.id)
                            | (HubOrder.scrutiny_member_state == authority.member_state))
    return [order_view(session, o) for o in session.scalars(query)]


def get_order(db: Database, authority: Authority | None, reference: str) -> dict[str, Any]:
    with db.read() as session:
        return _order(session, authority, reference)


def _order(session: Session, authority: Authority | None, reference: str) -> dict[str, Any]:
    order = session.get(HubOrder, reference)
    visible = order is not None and (authority is None or order.authority_id == authority.id
                                     or order.scrutiny_member_state == authority.member_state)
    if order is None or not visible:
        raise HubNotFound(f"no order {reference!r}")
    return {**order_view(session, order), "order": order.body, "linked_order": linked_outcome(session, order),
            "events": [{"kind": e.kind, "actor": e.actor, "at": e.at.isoformat(),
                        "data": events.read(e).model_dump(mode="json", exclude_none=True)}
                       for e in history(session, HubEvent, reference)]}


# --- the console's views ------------------------------------------------------------------------------------------

#: Art. 3(3): the provider acts within one hour of receipt.
ONE_HOUR = dt.timedelta(hours=1)


def deadlines(db: Database, views: list[dict[str, Any]]) -> dict[str, dt.datetime]:
    """When each delivered removal order's hour runs out, as the hub sees it.

    The hour starts when the contact point acknowledged the order, or restarts when the authority's last
    clarification was sent (the platform's own clock, from its receipt, is the legal one and may be a little later).
    """
    if not _running(views):
        return {}
    with db.read() as session:
        return _deadlines(session, views)


def _running(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in views if v["kind"] == "removal_order" and v["state"] == HubState.DELIVERED
            and v["acknowledged_at"]]


def _deadlines(session: Session, views: list[dict[str, Any]]) -> dict[str, dt.datetime]:
    running = _running(views)
    if not running:
        return {}
    clarified = {reference: at for reference, at in session.execute(
        select(HubEvent.subject, func.max(HubEvent.at))
        .where(HubEvent.kind == HubEventKind.CLARIFIED.value,
               HubEvent.subject.in_([v["hub_reference"] for v in running]))
        .group_by(HubEvent.subject))}
    out = {}
    for view in running:
        start = dt.datetime.fromisoformat(view["acknowledged_at"])
        again = clarified.get(view["hub_reference"])
        out[view["hub_reference"]] = max(start, again) + ONE_HOUR if again else start + ONE_HOUR
    return out


def actioned(db: Database, authority: Authority | None, *, limit: int = 40,
             ) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    """(order, received by the provider, actioned) of the last executed orders the caller may see, oldest first."""
    with db.read() as session:
        return _actioned(session, authority, limit)


def _actioned(session: Session, authority: Authority | None, limit: int = 40,
              ) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    query = (select(HubOrder.hub_reference, HubOrder.received_at, HubOrder.action_at)
             .where(HubOrder.action_at.is_not(None), HubOrder.received_at.is_not(None))
             .order_by(HubOrder.action_at.desc()).limit(limit))
    if authority is not None:
        query = query.where(HubOrder.authority_id == authority.id)
    rows = [(ref, received, acted) for ref, received, acted in session.execute(query) if received is not None]
    return list(reversed(rows))


# --- the console's pages, each read in one transaction (a tab refreshes its page every two seconds) --------------


@dataclass(frozen=True)
class Board:
    """The console's list of orders: whom the user acts for (``None``: an admin, who sees all), the orders it may
    see, when each delivered order's hour runs out, and the receipt-to-action times of its last executed ones."""

    authority: Authority | None
    orders: list[dict[str, Any]]
    deadlines: dict[str, dt.datetime]
    actioned: list[tuple[str, dt.datetime, dt.datetime | None]]


def board(db: Database, user_id: int | None) -> Board:
    """The list page of the console user ``user_id`` (``None``: an admin), in one read transaction."""
    with db.read() as session:
        authority = _authority_of_user(session, user_id) if user_id is not None else None
        views = _orders(session, authority)
        return Board(authority, views, _deadlines(session, views), _actioned(session, authority))


@dataclass(frozen=True)
class Sheet:
    """One order's page: whom the user acts for, the order with its events, when its hour runs out."""

    authority: Authority | None
    order: dict[str, Any]
    deadline: dt.datetime | None


def sheet(db: Database, user_id: int | None, reference: str) -> Sheet:
    """One order's page for the console user ``user_id`` (``None``: an admin), in one read transaction."""
    with db.read() as session:
        authority = _authority_of_user(session, user_id) if user_id is not None else None
        order = _order(session, authority, reference)
        return Sheet(authority, order, _deadlines(session, [order]).get(reference))
