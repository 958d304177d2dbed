"""The platform's contact point (TCO Art. 15): receive signed orders, act within the hour, answer through the outbox.

Receipt is one transaction (the order, its event, the acknowledgement's facts); execution is another (the moderation
actions, the order's state, the Annex II or III answer in the outbox). A crash between the two leaves a received
order that the worker (``tick``) executes on restart; the state guard means an order is never executed twice, and a
repeat of the same reference is answered with the stored acknowledgement. Every step is an ``OrderEvent``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import Clock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.eu import MEMBER_STATES
from bastion.core.events import history
from bastion.core.outbox.kinds import MessageKind
from bastion.core.outbox.services import enqueue
from bastion.core.outbox.webhooks import BodySigner, canonical_body
from bastion.moderation import actions as moderation
from bastion.moderation import queries as moderated
from bastion.moderation.kernel import Moderation
from bastion.moderation.notices import record_notice
from bastion.moderation.policy import Category
from bastion.orders import events
from bastion.orders.events import OrderChange, OrderState, next_state
from bastion.orders.interfaces import (
    InvalidOrderRequest,
    NoAuthority,
    Notifier,
    OrderConflict,
    OrderNotFound,
    SenderRole,
)
from bastion.orders.models import OrderEvent, PreservedContent, ReceivedOrder, SeenNonce, TrustedKey
from bastion.orders.wire import (
    DEFAULT_WINDOW_SECONDS,
    Ack,
    ActionTaken,
    AuthoritySignature,
    Clarification,
    Feedback,
    Inability,
    InabilityReason,
    MessageType,
    Referral,
    RefusalReason,
    Refused,
    Reinstatement,
    RemovalOrder,
    SignedMessage,
    SigningKey,
    ThreatToLife,
    Verified,
    check_authority_signature,
    contact_point_base,
    envelope,
    key_id,
    load_public_key,
    public_key_text,
    read_envelope,
    verify,
)

log = logging.getLogger(__name__)

ONE_HOUR = dt.timedelta(hours=1)
DEFAULT_ESCALATION_MINUTES = (15, 45, 55)


class OrderMessage(MessageKind):
    """What the contact point sends through the outbox. Values are storage keys and the ``Bastion-Event`` header."""

    FEEDBACK = "tco.feedback"  # Annex II, to the hub
    INABILITY = "tco.inability"  # Annex III, to the hub
    THREAT_TO_LIFE = "tco.threat_to_life"  # Art. 14(5), to the hub and the authorities
    ESCALATION = "orders.escalation"  # an order's deadline nears, to the platform's escalation endpoint
    CONTENT_PROVIDER_NOTICE = "orders.content_provider_notice"  # Art. 11, to the platform's webhook


#: Signed with this end's Ed25519 key (the TCO wire); the other kinds with the platform's webhook secret.
TCO_SIGNED = frozenset({OrderMessage.FEEDBACK, OrderMessage.INABILITY, OrderMessage.THREAT_TO_LIFE})
FEEDBACK_KIND = OrderMessage.FEEDBACK
INABILITY_KIND = OrderMessage.INABILITY
ESCALATION_KIND = OrderMessage.ESCALATION


# --- keys and signed messages -------------------------------------------------------------------------------------


def sender_key(text: str) -> Ed25519PublicKey:
    """A sender's public key as registered; ``InvalidOrderRequest`` when the text is not one."""
    try:
        return load_public_key(text)
    except ValueError as exc:
        raise InvalidOrderRequest(str(exc)) from None


def trust_key(db: Database, *, name: str, role: SenderRole, public_key: str, clock: Clock, member_state: str = "",
              answer_url: str = "") -> TrustedKey:
    """Register a hub's or an authority's public key. A hub needs ``answer_url``; an authority its Member State."""
    key = sender_key(public_key)
    if role is SenderRole.AUTHORITY and member_state.upper() not in MEMBER_STATES:
        raise InvalidOrderRequest("an authority's key needs its Member State (e.g. --member-state FR)")
    if not answer_url.startswith(("http://", "https://")):
        raise InvalidOrderRequest("answers go to answer_url, an absolute http(s) URL")
    with db.write() as session:
        row = session.get(TrustedKey, key_id(key))
        if row is not None and row.revoked_at is None:
            raise OrderConflict(f"key {row.key_id} is already trusted as {row.name!r}")
        row = row or TrustedKey(key_id=key_id(key))
        row.name, row.role, row.member_state = name, role.value, member_state.upper()
        row.public_key, row.answer_url = public_key_text(key), answer_url
        row.created_at, row.revoked_at = clock.now(), None
        session.add(row)
    return row


def revoke_key(db: Database, key: str, *, clock: Clock) -> bool:
    with db.write() as session:
        row = session.get(TrustedKey, key)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = clock.now()
        return True


def trusted_key(session: Session, key: str) -> TrustedKey | None:
    row = session.get(TrustedKey, key)
    return row if row is not None and row.revoked_at is None else None


def accept_signed(db: Database, headers: Mapping[str, str], body: bytes, *,
                  keys: Callable[[str], Ed25519PublicKey | None], clock: Clock,
                  window_seconds: float = DEFAULT_WINDOW_SECONDS) -> Verified:
    """Verify a signed body and spend its nonce; raises ``Refused`` and logs why (never the body or a secret)."""
    try:
        verified = verify(headers, body, keys=keys, now=clock.now(), window_seconds=window_seconds)
        try:
            with db.write() as session, session.begin_nested():
                session.add(SeenNonce(key_id=verified.key_id, nonce=verified.nonce, seen_at=clock.now()))
        except IntegrityError:
            raise Refused(RefusalReason.REPLAYED, "this signature's nonce was used before", verified.key_id) from None
    except Refused as refused:
        log.warning("signed message refused: %s (key %s)", refused.reason.value, refused.key or "-")
        raise
    return verified


def read_signed(db: Database, headers: Mapping[str, str], body: bytes, *,
                keys: Callable[[str], Ed25519PublicKey | None], clock: Clock, expect: tuple[MessageType, ...],
                attested: bool = False, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> SignedMessage:
    """The one reader of signed requests (the contact point's and the hub's): the signature checked and its nonce
    spent first, then the message parsed. Raises ``Refused`` (401, 403, 409) or ``InvalidMessage`` (422).
    ``attested``: the body may carry the issuing authority's own signature beside an order (from a hub)."""
    signer = accept_signed(db, headers, body, keys=keys, clock=clock, window_seconds=window_seconds)
    return read_envelope(signer, body, expect=expect, attested=attested)


def forget_nonces(db: Database, *, clock: Clock, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> int:
    """Nonces older than twice the window can go: a signature that old fails the time check anyway."""
    cutoff = clock.now() - dt.timedelta(seconds=2 * window_seconds)
    with db.write() as session:
        result = session.execute(delete(SeenNonce).where(SeenNonce.seen_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)


# --- the contact point --------------------------------------------------------------------------------------------


@dataclass
class OutboxNotifier:
    """Escalations as signed webhooks to the platform's on-duty channel, through the outbox."""

    url: str
    clock: Clock

    def escalate(self, session: Session, order: ReceivedOrder, minutes: int, *, overdue: bool) -> None:
        payload = {"order_reference": order.reference, "minutes": minutes, "overdue": overdue,
                   "deadline_at": order.deadline_at.isoformat(), "state": order.state}
        started = int(order.clock_started_at.timestamp())
        enqueue(session, kind=ESCALATION_KIND, destination=self.url, payload=payload,
                idempotency_key=f"{ESCALATION_KIND}:{order.reference}:{started}:{minutes}", clock=self.clock)


@dataclass
class ContactPoint:
    """The platform's designated contact point: who answers, how it acts and whom it tells as the hour runs."""

    mod: Moderation
    provider: str = "Bastion platform"
    member_state: str = "IE"
    authorised_person: str = "Contact point on duty"
    contact_email: str = "contact-point@example.invalid"
    escalation_minutes: tuple[int, ...] = DEFAULT_ESCALATION_MINUTES
    #: Execute orders as soon as they arrive; off, a person confirms with ``execute`` while the clock runs.
    auto_execute: bool = True
    #: Disable access in all Member States instead of removing the content.
    disable_only: bool = False
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    notifiers: list[Notifier] = field(default_factory=list)
    #: How long removed content is kept sealed (TCO Art. 6: six months, longer on request).
    preservation_days: int = 183
    #: Art. 14(5) reports go here when no Member State's authority is registered (Europol).
    europol_url: str | None = None
    #: This contact point's URL; when set, orders naming another contact point are refused (no cross-provider
    #: replay of a captured order: the signature covers the body, which names its contact point).
    own_url: str | None = None

    @property
    def db(self) -> Database:
        return self.mod.db

    @property
    def clock(self) -> Clock:
        return self.mod.clock

    def keys(self, key: str) -> Ed25519PublicKey | None:
        with self.db.read() as session:
            row = trusted_key(session, key)
            return load_public_key(row.public_key) if row is not None else None


def _event(session: Session, cp: ContactPoint, reference: str, actor: str, data: events.OrderPayload) -> None:
    events.write(session, reference, actor, cp.clock.now(), data)


def _ack(order: ReceivedOrder) -> Ack:
    return Ack(order_reference=order.reference, provider_reference=order.provider_reference,
               received_at=order.received_at, state=order.state)


#: What ``POST /v1/orders`` takes.
RECEIVED_TYPES = (MessageType.REMOVAL_ORDER, MessageType.REFERRAL, MessageType.CLARIFICATION,
                  MessageType.REINSTATEMENT)


def receive(cp: ContactPoint, signed: SignedMessage) -> Ack:
    """Take a signed message from a trusted sender; acts on it after the receipt is committed. The issuing
    authority's own signature comes with an order a hub forwards, when it was issued by API."""
    verified, message, signature, body = signed.signer, signed.message, signed.authority_signature, signed.body
    if not isinstance(message, RemovalOrder | Referral | Clarification | Reinstatement):
        raise InvalidOrderRequest(f"a {type(message).__name__} is not taken here")
    if signature is not None and not isinstance(message, RemovalOrder | Referral):
        raise InvalidOrderRequest("authority_signature: only an order or a referral carries one")
    if isinstance(message, Clarification):
        return clarify(cp, verified, message)
    if isinstance(message, Reinstatement):
        return reinstate(cp, verified, message)
    ack = _record_receipt(cp, verified, message, body, signature)
    if isinstance(message, RemovalOrder) and cp.auto_execute and ack.state == OrderState.RECEIVED:
        try:
            execute(cp, message.reference, actor="contact-point")
        except Exception:  # the receipt stands and is acknowledged; the clock worker retries and escalates
            log.exception("order %s was received but could not be executed yet", message.reference)
        ack = status_ack(cp, message.reference)
    elif isinstance(message, Referral) and ack.state == OrderState.REFERRED:
        refer_to_moderators(cp, message.reference)
        ack = status_ack(cp, message.reference)
    return ack


def status_ack(cp: ContactPoint, reference: str) -> Ack:
    with cp.db.read() as session:
        order = session.get(ReceivedOrder, reference)
        if order is None:
            raise OrderNotFound(f"no order {reference!r}")
        return _ack(order)


def _authority_signature(session: Session, message: RemovalOrder | Referral,
                         signature: AuthoritySignature | None) -> tuple[str, str | None]:
    """What the receipt records of the issuing authority's own signature on a forwarded order.

    Checked when this platform trusts the authority's key (``bastion orders trust --role authority``); a key it does
    not know leaves the hub's signature as the proof of origin, as for an order issued in the hub's console (none).
    A trusted key that does not match, or that belongs to another Member State, refuses the order.
    """
    if signature is None:
        return "none", None

    def authority_key(key: str) -> Ed25519PublicKey | None:
        row = trusted_key(session, key)
        return load_public_key(row.public_key) if row is not None and row.role == SenderRole.AUTHORITY else None

    try:
        check_authority_signature(signature, message, authority_key)
        row = trusted_key(session, signature.key_id)
        if row is None or row.member_state != message.issuing_member_state:
            raise Refused(RefusalReason.AUTHORITY_SIGNATURE, "the authority's key is trusted here for another "
                          "Member State than the issuing one", signature.key_id)
    except Refused as refused:
        if refused.reason is not RefusalReason.UNKNOWN_KEY:
            log.warning("forwarded order refused: %s (authority key %s)", refused.reason.value, signature.key_id)
            raise
        return "not checked (key not trusted here)", signature.key_id
    return "verified", signature.key_id


def _record_receipt(cp: ContactPoint, verified: Verified, message: RemovalOrder | Referral, body: bytes,
                    signature: AuthoritySignature | None = None) -> Ack:
    digest = hashlib.sha256(body).hexdigest()
    now = cp.clock.now()
    is_order = isinstance(message, RemovalOrder)
    try:
        with cp.db.write() as session:
            existing = session.get(ReceivedOrder, message.reference)
            if existing is not None:
                return _repeat(session, cp, existing, message, verified)
            sender = trusted_key(session, verified.key_id)
            if sender is None:  # revoked between the signature check and now
                raise Refused(RefusalReason.UNKNOWN_KEY, "the signing key is not registered", verified.key_id)
            if cp.own_url and isinstance(message, RemovalOrder) \
                    and contact_point_base(message.contact_point) != contact_point_base(cp.own_url):
                raise Refused(RefusalReason.NOT_ALLOWED, "the order is addressed to another contact point",
                              verified.key_id)
            if sender.role == SenderRole.AUTHORITY and sender.member_state != message.issuing_member_state:
                raise Refused(RefusalReason.NOT_ALLOWED, "an authority may only issue for its own Member State",
                              verified.key_id)
            checked, authority_key = _authority_signature(session, message, signature)
            state = next_state(None, OrderChange.RECEIVE_ORDER if is_order else OrderChange.RECEIVE_REFERRAL)
            order = ReceivedOrder(
                reference=message.reference, kind="removal_order" if is_order else "referral",
                provider_reference=f"cp-{uuid.uuid4().hex[:16]}", sender_key=verified.key_id,
                body=message.model_dump(mode="json"), body_sha256=digest, state=state.value, received_at=now,
                clock_started_at=now, deadline_at=now + ONE_HOUR, content_ids=[], clarified={},
                answer_url=sender.answer_url,
                updated_at=now)
            session.add(order)
            session.flush()
            receipt = events.Received if is_order else events.ReferralReceived
            _event(session, cp, order.reference, f"key:{sender.key_id}", receipt(
                sender=sender.name, issuing_member_state=message.issuing_member_state, urls=len(message.urls),
                nonce=verified.nonce, authority_signature=checked, authority_key=authority_key))
            return _ack(order)
    except IntegrityError:  # the same reference arrived twice at once: the other request recorded it
        with cp.db.write() as session:
            existing = session.get(ReceivedOrder, message.reference)
            assert existing is not None
            return _repeat(session, cp, existing, message, verified)


def _repeat(session: Session, cp: ContactPoint, existing: ReceivedOrder, message: RemovalOrder | Referral,
            verified: Verified) -> Ack:
    """A retry of an order already received: the same answer, unless the body differs (then it is refused)."""
    if existing.sender_key != verified.key_id:
        raise Refused(RefusalReason.NOT_ALLOWED, "this reference was received from another sender", verified.key_id)
    if existing.body != message.model_dump(mode="json"):
        raise OrderConflict(f"order {existing.reference!r} was received before with different content")
    _event(session, cp, existing.reference, f"key:{verified.key_id}", events.Repeated(nonce=verified.nonce))
    return _ack(existing)


def _find_content(session: Session, urls: list[str], content_ids: list[str]) -> list[moderated.ContentView]:
    return moderated.find_content(session, content_ids=content_ids, urls=urls)


def _answer_header(cp: ContactPoint, order: ReceivedOrder, parsed: RemovalOrder) -> dict[str, Any]:
    return {"order_reference": order.reference, "addressee": parsed.addressee,
            "issuing_authority": parsed.authority.name, "authority_file_number": parsed.authority.file_number,
            "provider_reference": order.provider_reference, "received_at": order.received_at,
            "provider": cp.provider, "member_state": cp.member_state, "authorised_person": cp.authorised_person,
            "contact_email": cp.contact_email, "signed_at": cp.clock.now()}


def execute(cp: ContactPoint, reference: str, *, actor: str) -> OrderState:
    """Remove (or disable) the content of a received order and queue the Annex II feedback, in one transaction.

    Nothing found: an Annex III (insufficient information) instead, and the clock waits for a clarification.
    An order not in ``received`` is left alone, so running this twice (a retry, the worker after a crash) is safe.
    """
    with cp.db.write() as session:
        order = session.scalar(select(ReceivedOrder).where(ReceivedOrder.reference == reference).with_for_update())
        if order is None:
            raise OrderNotFound(f"no order {reference!r}")
        current = OrderState(order.state)
        if next_state(current, OrderChange.EXECUTE, reference=reference) is current:
            return current
        parsed = RemovalOrder.model_validate(order.body)
        clarified = order.clarified or {}
        items = _find_content(session, [*parsed.urls, *clarified.get("urls", [])],
                              [*parsed.content_ids, *clarified.get("content_ids", [])])
        if not items:
            explanation = ("No content on this service matches the URLs or content identifiers of the order; "
                           "please send the exact URL or the content identifier.")
            _answer_inability(session, cp, order, parsed, InabilityReason.INSUFFICIENT_INFORMATION, explanation,
                              actor)
            return OrderState.UNABLE
        territories = sorted(MEMBER_STATES) if cp.disable_only else []
        facts = f"Removal order {parsed.reference} of {parsed.authority.name} ({parsed.issuing_member_state}): " \
                f"{parsed.reasons}"[:5000]
        now = cp.clock.now()
        withheld = parsed.non_disclosure_until is not None and parsed.non_disclosure_until > now
        done: list[events.ActedOn] = []
        for item in items:
            acted = moderation.enforce_order(cp.mod, session, item.content_id, order=reference, facts=facts,
                                             territories=territories, withhold_statement=withheld)
            done.append(events.ActedOn(content_id=item.content_id, status=item.status, acted=acted))
        action = ActionTaken.DISABLED if cp.disable_only else ActionTaken.REMOVED
        order.state = next_state(current, OrderChange.EXECUTE).value
        order.action, order.action_at, order.updated_at = action.value, now, now
        # only what this order took down: a reinstatement must not bring back what was down for other reasons
        order.content_ids = [d.content_id for d in done if d.acted]
        _event(session, cp, reference, actor, events.Executed(
            action=action, content=done, seconds_since_receipt=round((now - order.received_at).total_seconds(), 3),
            within_hour=now <= order.deadline_at, category=Category.TERRORIST_CONTENT.value))
        _preserve(session, cp, order, items)
        order.notify_provider_at = parsed.non_disclosure_until or now
        if order.notify_provider_at <= now:
            inform_content_provider(session, cp, order)
        if order.answer_url:
            feedback = Feedback(**_answer_header(cp, order, parsed), action=action, action_at=now)
            enqueue(session, kind=FEEDBACK_KIND, destination=order.answer_url, payload=envelope(feedback),
                    idempotency_key=f"{FEEDBACK_KIND}:{reference}", clock=cp.clock)
        return OrderState.EXECUTED


def _answer_inability(session: Session, cp: ContactPoint, order: ReceivedOrder, parsed: RemovalOrder,
                      reason: InabilityReason, explanation: str, actor: str) -> None:
    now = cp.clock.now()
    order.state = next_state(OrderState(order.state), OrderChange.DECLARE_UNABLE, reference=order.reference).value
    order.updated_at = now
    _event(session, cp, order.reference, actor, events.Unable(reason=reason, explanation=explanation))
    if order.answer_url:
        inability = Inability(**_answer_header(cp, order, parsed), reason=reason, explanation=explanation)
        started = int(order.clock_started_at.timestamp())
        enqueue(session, kind=INABILITY_KIND, destination=order.answer_url, payload=envelope(inability),
                idempotency_key=f"{INABILITY_KIND}:{order.reference}:{started}", clock=cp.clock)


def declare_inability(cp: ContactPoint, reference: str, reason: InabilityReason, explanation: str, *,
                      actor: str) -> OrderState:
    """A person answers with Annex III (force majeure, manifest error, missing information) while the clock runs."""
    with cp.db.write() as session:
        order = session.scalar(select(ReceivedOrder).where(ReceivedOrder.reference == reference).with_for_update())
        if order is None:
            raise OrderNotFound(f"no order {reference!r}")
        _answer_inability(session, cp, order, RemovalOrder.model_validate(order.body), reason, explanation, actor)
        return OrderState.UNABLE


def clarify(cp: ContactPoint, verified: Verified, message: Clarification) -> Ack:
    """The clarification after an Annex III: the identification is completed and the one-hour clock restarts."""
    with cp.db.write() as session:
        order = session.scalar(select(ReceivedOrder).where(ReceivedOrder.reference == message.order_reference)
                               .with_for_update())
        if order is None:
            raise OrderNotFound(f"no order {message.order_reference!r}")
        if order.sender_key != verified.key_id:
            raise Refused(RefusalReason.NOT_ALLOWED, "only the order's sender may clarify it", verified.key_id)
        current = OrderState(order.state)
        if next_state(current, OrderChange.CLARIFY) is not current:
            now = cp.clock.now()
            before = dict(order.clarified or {})
            order.clarified = {
                "urls": list(dict.fromkeys([*before.get("urls", []), *message.urls])),
                "content_ids": list(dict.fromkeys([*before.get("content_ids", []), *message.content_ids])),
            }
            order.state = next_state(current, OrderChange.CLARIFY).value
            order.clock_started_at, order.deadline_at = now, now + ONE_HOUR
            order.escalations, order.overdue, order.updated_at = 0, False, now
            _event(session, cp, order.reference, f"key:{verified.key_id}", events.Clarified(
                explanation=message.explanation, urls=len(message.urls), content_ids=len(message.content_ids)))
        state = order.state
    if cp.auto_execute and state == OrderState.RECEIVED:
        execute(cp, message.order_reference, actor="contact-point")
    return status_ack(cp, message.order_reference)


def reinstate(cp: ContactPoint, verified: Verified, message: Reinstatement) -> Ack:
    """Art. 4(4): the order was found to infringe the Regulation; it ceases to have effect and content comes back."""
    with cp.db.write() as session:
        order = session.scalar(select(ReceivedOrder).where(ReceivedOrder.reference == message.order_reference)
                               .with_for_update())
        if order is None:
            raise OrderNotFound(f"no order {message.order_reference!r}")
        sender = trusted_key(session, verified.key_id)
        if sender is None or order.sender_key != verified.key_id:
            raise Refused(RefusalReason.NOT_ALLOWED, "only the order's sender may end it", verified.key_id)
        current = OrderState(order.state)
        if next_state(current, OrderChange.REINSTATE) is not current:
            for content_id in order.content_ids:
                moderation.enforce_order(cp.mod, session, content_id, order=order.reference,
                                         facts=message.reasons, reinstate=True)
            now = cp.clock.now()
            order.state, order.updated_at = next_state(current, OrderChange.REINSTATE).value, now
            _event(session, cp, order.reference, f"key:{verified.key_id}", events.Reinstated(
                member_state=message.member_state, reasons=message.reasons, content_ids=order.content_ids))
        return _ack(order)


def refer_to_moderators(cp: ContactPoint, reference: str) -> None:
    """A voluntary referral becomes a trusted notice on each item it names: moderators judge it by the terms."""
    with cp.db.read() as session:
        order = session.get(ReceivedOrder, reference)
        if order is None or next_state(OrderState(order.state), OrderChange.REFER) is OrderState(order.state):
            return
        referral = Referral.model_validate(order.body)
        items = [i.content_id for i in _find_content(session, list(referral.urls), list(referral.content_ids))]
    actor = Principal("system", 0, f"referral:{reference}", Role.PLATFORM)
    for content_id in items:  # keyed on the referral: a tick running at the same time, or a rerun, adds nothing
        record_notice(cp.mod, content_id, category=Category.TERRORIST_CONTENT,
                                 explanation=referral.reasons, trusted_flagger=True,
                                 notifier=f"{referral.authority.name} ({referral.issuing_member_state})", actor=actor,
                                 external_id=f"referral:{reference}:{hashlib.sha256(content_id.encode()).hexdigest()}")
    with cp.db.write() as session:
        order = session.get(ReceivedOrder, reference)
        current = OrderState(order.state) if order is not None else None
        if order is not None and current is not None and next_state(current, OrderChange.REFER) is not current:
            order.state, order.content_ids, order.updated_at = next_state(current, OrderChange.REFER).value, items, \
                cp.clock.now()
            _event(session, cp, reference, "contact-point", events.ReferralInReview(content_ids=items))


# --- telling the content provider (Art. 11) -----------------------------------------------------------------------


PROVIDER_NOTICE_KIND = OrderMessage.CONTENT_PROVIDER_NOTICE


def inform_content_provider(session: Session, cp: ContactPoint, order: ReceivedOrder) -> None:
    """Tell the uploader, through the platform's webhook, why the content went and how to seek redress.

    Called once the removal is done and any non-disclosure period (Annex I section C) has ended. Without a platform
    webhook nothing can be sent; the event records that the notice is due all the same.
    """
    parsed = RemovalOrder.model_validate(order.body)
    now = cp.clock.now()
    for content_id in order.content_ids:
        item = moderated.content(session, content_id)
        if item is None:
            continue
        puid = None
        if parsed.non_disclosure:  # the statement of reasons was withheld with everything else: issue it now
            facts = f"Removal order {parsed.reference} of {parsed.authority.name} " \
                    f"({parsed.issuing_member_state}): {parsed.reasons}"[:5000]
            territories = sorted(MEMBER_STATES) if order.action == ActionTaken.DISABLED.value else []
            puid = moderation.issue_order_statement(cp.mod, session, content_id, order=order.reference, facts=facts,
                                                    territories=territories)
        if cp.mod.webhook_url is None:
            continue
        payload = {"statement_puid": puid, "content_id": content_id, "account_id": item.account_id,
                   "order_reference": order.reference,
                   "issuing_authority": parsed.authority.name, "member_state": parsed.issuing_member_state,
                   "reasons": parsed.reasons, "material_types": [m.value for m in parsed.material_types],
                   "legal_basis": parsed.legal_basis, "action": order.action,
                   "redress": parsed.redress.model_dump(mode="json"),
                   "complaint": "You may ask us to review this removal and ask the issuing or host Member State's "
                                "authority to scrutinise the order (Regulation (EU) 2021/784, Art. 4 and 9)."}
        enqueue(session, kind=PROVIDER_NOTICE_KIND, destination=cp.mod.webhook_url, payload=payload,
                idempotency_key=f"{PROVIDER_NOTICE_KIND}:{order.reference}:{content_id}", clock=cp.clock)
    order.provider_notified_at = now
    _event(session, cp, order.reference, "contact-point", events.ProviderInformed(
        content_ids=order.content_ids, sent=cp.mod.webhook_url is not None))


def _inform_when_disclosure_allows(cp: ContactPoint) -> None:
    now = cp.clock.now()
    with cp.db.write() as session:
        due = session.scalars(select(ReceivedOrder).where(
            ReceivedOrder.state == OrderState.EXECUTED.value, ReceivedOrder.provider_notified_at.is_(None),
            ReceivedOrder.notify_provider_at <= now))
        for order in due:
            inform_content_provider(session, cp, order)


# --- imminent threat to life (Art. 14(5)) ---------------------------------------------------------------------------


THREAT_KIND = OrderMessage.THREAT_TO_LIFE


def _authority_of(session: Session, member_state: str) -> TrustedKey | None:
    """The registered competent authority of ``member_state`` that can be written to, the first registered."""
    return session.scalar(select(TrustedKey).where(
        TrustedKey.role == SenderRole.AUTHORITY.value, TrustedKey.member_state == member_state.upper(),
        TrustedKey.revoked_at.is_(None), TrustedKey.answer_url != "").order_by(TrustedKey.created_at).limit(1))


def report_threat_to_life(cp: ContactPoint, content_id: str, *, member_state: str | None, explanation: str,
                          actor: str) -> dict[str, Any]:
    """Send, signed and through the outbox, a report of content showing an imminent threat to life.

    It goes to the registered authority of the Member State concerned. When that State is not identified (or has
    no authority registered here), it goes to the authority of the Member State where this provider is established
    (``ContactPoint.member_state``) and to Europol, each that is configured. Once per content item and recipient
    (a second report of the same item is the same message).
    """
    if member_state is not None and member_state.upper() not in MEMBER_STATES:
        raise InvalidOrderRequest(f"member_state: {member_state!r} is not a Member State")
    with cp.db.write() as session:
        item = moderated.content(session, content_id)
        if item is None:
            raise OrderNotFound(f"no content {content_id!r}")
        concerned = _authority_of(session, member_state) if member_state else None
        recipients: list[tuple[str, str]] = []
        if concerned is not None:
            recipients.append((concerned.name, concerned.answer_url))
        else:
            established = _authority_of(session, cp.member_state)
            if established is not None:
                recipients.append((established.name, established.answer_url))
            if cp.europol_url:
                recipients.append(("Europol", cp.europol_url))
        if not recipients:
            raise NoAuthority(f"no authority registered for {member_state or 'an unidentified Member State'} nor "
                              f"for {cp.member_state} (where this provider is established), and no Europol contact "
                              "(BASTION_ORDERS_EUROPOL_URL)")
        report = ThreatToLife(content_id=content_id, url=item.url, member_state=member_state and member_state.upper(),
                              explanation=explanation, detected_at=cp.clock.now(), provider=cp.provider,
                              contact_email=cp.contact_email)
        digest = hashlib.sha256(content_id.encode()).hexdigest()[:32]
        for recipient, destination in recipients:
            enqueue(session, kind=THREAT_KIND, destination=destination, payload=envelope(report),
                    idempotency_key=f"{THREAT_KIND}:{digest}:{recipient}", clock=cp.clock)
            _event(session, cp, f"threat:{digest}", actor, events.ThreatReported(
                content_id=content_id, recipient=recipient, member_state=member_state))
        return {"content_id": content_id, "sent_to": [name for name, _ in recipients]}


# --- preservation (Art. 6) ----------------------------------------------------------------------------------------


def _seal_context(reference: str, content_id: str) -> str:
    return f"preserved:{reference}:{content_id}"


def _preserve(session: Session, cp: ContactPoint, order: ReceivedOrder, items: list[moderated.ContentView]
              ) -> None:
    """Keep what was removed, sealed with the media key, in the transaction that removed it."""
    sealer = cp.mod.sealer
    if sealer is None:
        _event(session, cp, order.reference, "contact-point", events.NotPreserved(reason="no media key configured"))
        return
    now = cp.clock.now()
    keep_until = now + dt.timedelta(days=cp.preservation_days)
    for item in items:
        data = {"content_id": item.content_id, "account_id": item.account_id, "content_type": item.content_type,
                "text": item.text, "url": item.url, "signals": item.signals, "category": item.category,
                "created_at": item.created_at.isoformat(), "order": order.body}
        sealed = sealer.seal(canonical_body(data), _seal_context(order.reference, item.content_id))
        session.add(PreservedContent(order_reference=order.reference, content_id=item.content_id, sealed=sealed,
                                     preserved_at=now, keep_until=keep_until))
    _event(session, cp, order.reference, "contact-point", events.Preserved(
        content_ids=[i.content_id for i in items], keep_until=keep_until))


def preserved(cp: ContactPoint, reference: str) -> list[dict[str, Any]]:
    """What was kept for an order, opened (for a review, a complaint or an investigation); purged items say so."""
    sealer = cp.mod.sealer
    with cp.db.read() as session:
        rows = list(session.scalars(select(PreservedContent).where(PreservedContent.order_reference == reference)
                                    .order_by(PreservedContent.content_id)))
    out = []
    for row in rows:
        data = None
        if row.purged_at is None and sealer is not None:
            data = json.loads(sealer.open(row.sealed, _seal_context(reference, row.content_id)))
        out.append({"content_id": row.content_id, "keep_until": row.keep_until.isoformat(),
                    "purged_at": row.purged_at.isoformat() if row.purged_at else None, "data": data})
    return out


def extend_preservation(cp: ContactPoint, reference: str, until: dt.datetime, *, actor: str) -> int:
    """Keep an order's content longer (at an authority's or court's request); never shortens."""
    with cp.db.write() as session:
        rows = list(session.scalars(select(PreservedContent).where(PreservedContent.order_reference == reference,
                                                                   PreservedContent.purged_at.is_(None))))
        if not rows:
            raise OrderNotFound(f"nothing is preserved for order {reference!r}")
        for row in rows:
            row.keep_until = max(row.keep_until, until)
        _event(session, cp, reference, actor, events.PreservationExtended(until=until))
        return len(rows)


def purge_preserved(cp: ContactPoint) -> int:
    """Erase sealed content whose time is up; each purge is an event and a log line (no content in either)."""
    now = cp.clock.now()
    with cp.db.write() as session:
        rows = list(session.scalars(select(PreservedContent).where(PreservedContent.keep_until <= now,
                                                                   PreservedContent.purged_at.is_(None))))
        for row in rows:
            row.sealed, row.purged_at = b"", now
            _event(session, cp, row.order_reference, "contact-point", events.Purged(
                content_id=row.content_id, kept_since=row.preserved_at))
            log.info("purged preserved content %s of order %s", row.content_id, row.order_reference)
        return len(rows)


# --- the clock ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TickReport:
    executed: int = 0
    escalated: int = 0
    overdue: int = 0


def tick(cp: ContactPoint) -> TickReport:
    """Escalate orders whose hour is running out, flag overdue ones, and finish what a crash left half done."""
    now = cp.clock.now()
    with cp.db.read() as session:
        waiting = list(session.scalars(select(ReceivedOrder.reference).where(
            ReceivedOrder.state == OrderState.RECEIVED.value).order_by(ReceivedOrder.deadline_at)))
        referred = list(session.scalars(select(ReceivedOrder.reference).where(
            ReceivedOrder.state == OrderState.REFERRED.value)))
    executed = escalated = overdue = 0
    for reference in referred:
        try:
            refer_to_moderators(cp, reference)
        except Exception:
            log.exception("referral %s could not be passed to moderators; retried next round", reference)
    for reference in waiting:
        try:
            if cp.auto_execute and execute(cp, reference, actor="contact-point") != OrderState.RECEIVED:
                executed += 1
                continue
        except Exception:  # one order that cannot be executed must not stop the others, nor its own escalation
            log.exception("order %s could not be executed; it stays waiting and is escalated", reference)
        e, o = _escalate(cp, reference, now)
        escalated, overdue = escalated + e, overdue + o
    for housekeeping in (lambda: forget_nonces(cp.db, clock=cp.clock, window_seconds=cp.window_seconds),
                         lambda: purge_preserved(cp), lambda: _inform_when_disclosure_allows(cp)):
        try:
            housekeeping()
        except Exception:
            log.exception("contact-point housekeeping failed; retried next round")
    return TickReport(executed, escalated, overdue)


def _escalate(cp: ContactPoint, reference: str, now: dt.datetime) -> tuple[int, int]:
    """Tell people as an order's hour runs out; returns (escalations sent, newly overdue)."""
    escalated = overdue = 0
    with cp.db.write() as session:
        order = session.get(ReceivedOrder, reference)
        if order is None or order.state != OrderState.RECEIVED:
            return 0, 0
        elapsed = (now - order.clock_started_at).total_seconds() / 60
        due = [m for m in sorted(cp.escalation_minutes) if elapsed >= m]
        for minutes in due[order.escalations:]:
            _event(session, cp, reference, "contact-point", events.Escalated(minutes=minutes))
            for notifier in cp.notifiers:
                notifier.escalate(session, order, minutes, overdue=False)
            escalated += 1
        order.escalations = max(order.escalations, len(due))
        if now >= order.deadline_at and not order.overdue:
            order.overdue = True
            _event(session, cp, reference, "contact-point", events.Overdue(minutes=round(elapsed, 1)))
            for notifier in cp.notifiers:
                notifier.escalate(session, order, 60, overdue=True)
            overdue += 1
    return escalated, overdue




# --- reading ------------------------------------------------------------------------------------------------------


def order_view(order: ReceivedOrder, now: dt.datetime) -> dict[str, Any]:
    """The API shape of an order, with what is left of its hour (negative when overdue)."""
    waiting = order.state == OrderState.RECEIVED
    return {
        "reference": order.reference, "kind": order.kind, "state": order.state,
        "provider_reference": order.provider_reference, "received_at": order.received_at.isoformat(),
        "deadline_at": order.deadline_at.isoformat(),
        "seconds_left": round((order.deadline_at - now).total_seconds()) if waiting else None,
        "overdue": order.overdue, "action": order.action or None,
        "action_at": order.action_at.isoformat() if order.action_at else None, "content_ids": order.content_ids,
        "escalations": order.escalations,
    }


def received_orders(db: Database, now: dt.datetime, *, state: str | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
    """Every order still waiting for action (overdue first, then by deadline), then the rest, newest first, up to
    ``limit`` in all: a new order never drops off the list behind old finished ones."""
    with db.read() as session:
        waiting = select(ReceivedOrder).where(ReceivedOrder.state == OrderState.RECEIVED.value) \
            .order_by(ReceivedOrder.overdue.desc(), ReceivedOrder.deadline_at)
        rest = select(ReceivedOrder).where(ReceivedOrder.state != OrderState.RECEIVED.value) \
            .order_by(ReceivedOrder.received_at.desc())
        if state:
            waiting, rest = waiting.where(ReceivedOrder.state == state), rest.where(ReceivedOrder.state == state)
        first = list(session.scalars(waiting))
        more = list(session.scalars(rest.limit(max(0, limit - len(first)))))
        return [order_view(o, now) for o in first + more]


def list_orders(cp: ContactPoint, *, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    return received_orders(cp.db, cp.clock.now(), state=state, limit=limit)


def get_order(cp: ContactPoint, reference: str) -> dict[str, Any]:
    with cp.db.read() as session:
        order = session.get(ReceivedOrder, reference)
        if order is None:
            raise OrderNotFound(f"no order {reference!r}")
        return {**order_view(order, cp.clock.now()), "order": order.body,
                "events": [{"kind": e.kind, "actor": e.actor, "at": e.at.isoformat(),
                            "data": events.read(e).model_dump(mode="json")} for e in history(session, OrderEvent,
                                                                                            reference)]}


# --- wiring -------------------------------------------------------------------------------------------------------


class MissingSigningKey:
    """Stands in when no key is configured: sending fails (and is retried) rather than going out unsigned."""

    def headers(self, body: bytes, now: dt.datetime) -> dict[str, str]:
        raise RuntimeError("no Ed25519 signing key is configured")


def tco_signer(key_text: str) -> BodySigner:
    """The outbox's signer for TCO wire messages (orders, answers): this end's Ed25519 key."""
    return SigningKey.from_text(key_text) if key_text else MissingSigningKey()


def contact_point_for(settings: Settings, mod: Moderation) -> ContactPoint:
    """The contact point as configured; a Member State that Annex II/III could not carry stops the start now,
    rather than every order failing at its first answer."""
    if settings.orders_member_state not in MEMBER_STATES:
        raise InvalidOrderRequest(f"BASTION_ORDERS_MEMBER_STATE: {settings.orders_member_state!r} is not an EU "
                                  f"Member State code ({', '.join(sorted(MEMBER_STATES))})")
    notifiers: list[Notifier] = []
    if settings.orders_escalation_url:
        notifiers.append(OutboxNotifier(settings.orders_escalation_url, mod.clock))
    return ContactPoint(mod, provider=settings.orders_provider, member_state=settings.orders_member_state,
                        contact_email=settings.orders_contact_email,
                        escalation_minutes=settings.orders_escalation_minutes,
                        auto_execute=settings.orders_auto_execute, notifiers=notifiers,
                        preservation_days=settings.orders_preservation_days,
                        europol_url=settings.orders_europol_url, own_url=settings.orders_contact_point_url)
