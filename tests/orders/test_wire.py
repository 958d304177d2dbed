"""The wire: Annex I-III validation with clear errors, canonical bodies, Ed25519 signatures and their refusals."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bastion.core.outbox.webhooks import canonical_body
from bastion.orders.wire import (
    AUTHORITY_SIGNATURE,
    SIGNATURE_HEADER,
    AuthoritySignature,
    Feedback,
    Inability,
    InvalidMessage,
    MessageType,
    RefusalReason,
    Refused,
    RemovalOrder,
    SigningKey,
    attestation,
    check_authority_signature,
    envelope,
    load_public_key,
    parse,
    signed_request,
    verify,
)
from tests.factories.orders import make_order, order_fields

NOW = dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.UTC)


def test_a_complete_order_round_trips_through_its_canonical_envelope() -> None:
    order = make_order()
    body = canonical_body(envelope(order))
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert body.startswith(b'{"message":{"additional_reasons":""') and body.endswith(b'"type":"removal_order"}')
    assert parse(json.loads(body)) == order
    assert order.cross_border  # FR orders a provider established in IE: Annex I section D


@pytest.mark.parametrize(("change", "message"), [
    ({"issuing_member_state": "US"}, "issuing_member_state"),
    ({"urls": []}, "urls"),
    ({"urls": ["ftp://x.example/file"]}, "urls.0"),
    ({"urls": ["https://video.example/ok", "http:///etc/passwd"]}, "urls.1: .*with a host"),
    ({"urls": ["https://video.example:0x50/v"]}, "urls.0: .*not a valid URL"),
    ({"issuing_member_state": "ZZ"}, "issuing_member_state"),
    ({"material_types": ["jokes"]}, "material_types.0"),
    ({"issued_at": "2026-11-29T10:00:00"}, "issued_at"),
    ({"non_disclosure": True}, "non_disclosure_until go together"),
    ({"legal_basis": "some other law"}, "legal_basis"),
    ({"surprise": 1}, "surprise"),
])
def test_an_invalid_order_is_refused_naming_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidMessage, match=message):
        parse({"type": "removal_order", "message": {**order_fields(), **change}})


def test_missing_authority_and_wrong_member_state_are_refused() -> None:
    fields = order_fields()
    del fields["authority"]
    with pytest.raises(InvalidMessage, match=r"message\.authority"):
        parse({"type": "removal_order", "message": fields})
    other = order_fields()
    other["authority"] = {**other["authority"], "member_state": "DE"}
    with pytest.raises(InvalidMessage, match="issuing Member State"):
        parse({"type": "removal_order", "message": other})


def test_unknown_or_unexpected_message_types_are_refused() -> None:
    with pytest.raises(InvalidMessage, match="unknown message type"):
        parse({"type": "love_letter", "message": {}})
    with pytest.raises(InvalidMessage, match="not accepted here"):
        parse(envelope(make_order()), expect=(MessageType.FEEDBACK,))
    with pytest.raises(InvalidMessage, match="body must be"):
        parse([1, 2])


def test_feedback_needs_the_time_of_action() -> None:
    fields = {"order_reference": "HUB-1", "addressee": "P", "issuing_authority": "OCLCTIC",
              "authority_file_number": "PN-1", "provider_reference": "cp-1",
              "received_at": NOW.isoformat(), "provider": "P", "member_state": "IE", "authorised_person": "A",
              "contact_email": "cp@p.example", "signed_at": NOW.isoformat(), "action": "removed"}
    with pytest.raises(InvalidMessage, match="action_at"):
        parse({"type": "feedback", "message": fields})
    parsed = parse({"type": "feedback", "message": {**fields, "action_at": NOW.isoformat()}})
    assert isinstance(parsed, Feedback) and parsed.action_at == NOW


def _keys(*known: SigningKey) -> dict[str, object]:
    return {k.key_id: k.public for k in known}


def test_a_signature_verifies_and_names_its_key_and_nonce() -> None:
    key = SigningKey.generate()
    body, headers = signed_request(key, make_order(), NOW)
    verified = verify(headers, body, keys=_keys(key).get, now=NOW)  # type: ignore[arg-type]
    assert verified.key_id == key.key_id and len(verified.nonce) == 32 and verified.sent_at == NOW


@pytest.mark.parametrize("reason", list(RefusalReason)[:5])
def test_refusals(reason: RefusalReason) -> None:
    key, stranger = SigningKey.generate(), SigningKey.generate()
    body, headers = signed_request(key, make_order(), NOW)
    now = NOW
    if reason is RefusalReason.UNSIGNED:
        headers = {"Content-Type": "application/json"}
    elif reason is RefusalReason.MALFORMED:
        headers = {SIGNATURE_HEADER: "key=abc,sig=zzz"}
    elif reason is RefusalReason.UNKNOWN_KEY:
        body, headers = signed_request(stranger, make_order(), NOW)
    elif reason is RefusalReason.BAD_SIGNATURE:
        body = body.replace(b"abc123", b"abc124")  # the URL altered in transit
    elif reason is RefusalReason.STALE:
        now = NOW + dt.timedelta(minutes=6)
    with pytest.raises(Refused) as refused:
        verify(headers, body, keys=_keys(key).get, now=now)  # type: ignore[arg-type]
    assert refused.value.reason is reason and refused.value.status == 401


def test_keys_round_trip_as_text_and_never_show_in_repr() -> None:
    key = SigningKey.generate()
    again = SigningKey.from_text(key.to_text())
    assert again.key_id == key.key_id and key.to_text() not in repr(key)
    assert load_public_key(key.public_text) is not None
    with pytest.raises(ValueError, match="Ed25519 public key"):
        load_public_key("not-a-key")
    with pytest.raises(ValueError, match="Ed25519 private key"):
        SigningKey.from_text("AAAA")


def test_an_order_is_frozen() -> None:
    order = make_order()
    with pytest.raises(ValueError):
        order.reference = "other"  # type: ignore[misc]
    assert isinstance(order, RemovalOrder)


def test_non_disclosure_is_capped_at_twelve_weeks() -> None:
    import pydantic

    from bastion.orders.wire import RemovalOrder
    from tests.factories.orders import order_fields

    fields = order_fields("FR-1")
    issued = dt.datetime.fromisoformat(fields["issued_at"])
    ok = {**fields, "non_disclosure": True, "non_disclosure_until": (issued + dt.timedelta(weeks=12)).isoformat()}
    assert RemovalOrder.model_validate(ok).non_disclosure
    too_long = {**ok, "non_disclosure_until": (issued + dt.timedelta(weeks=13)).isoformat()}
    with pytest.raises(pydantic.ValidationError, match="twelve weeks"):
        RemovalOrder.model_validate(too_long)


def test_annex_ii_and_iii_name_the_addressee_and_the_issuing_authority() -> None:
    fields = {"order_reference": "HUB-1", "addressee": "Bastion Video Ltd", "issuing_authority": "OCLCTIC",
              "authority_file_number": "PN-1", "provider_reference": "cp-1", "received_at": NOW.isoformat(),
              "provider": "P", "member_state": "IE", "authorised_person": "A", "contact_email": "cp@p.example",
              "signed_at": NOW.isoformat(), "reason": "manifest_error", "explanation": "The URL is not ours."}
    for missing in ("addressee", "issuing_authority"):
        with pytest.raises(InvalidMessage, match=rf"message\.{missing}: Field required"):
            parse({"type": "inability", "message": {k: v for k, v in fields.items() if k != missing}})
    with pytest.raises(InvalidMessage, match=r"message\.addressee"):
        parse({"type": "inability", "message": {**fields, "addressee": ""}})
    parsed = parse({"type": "inability", "message": fields})
    assert isinstance(parsed, Inability) and (parsed.addressee, parsed.issuing_authority) == ("Bastion Video Ltd",
                                                                                             "OCLCTIC")


def _forwarded(order: RemovalOrder) -> RemovalOrder:
    """The order as a hub forwards it: under the hub's reference, to the provider's registered contact point."""
    return order.model_copy(update={"reference": "TCO-0001", "contact_point": "https://cp.example"})


def test_the_authority_s_signature_is_checked_against_the_forwarded_order() -> None:
    authority, stranger = SigningKey.generate(), SigningKey.generate()
    order = make_order()
    body, headers = signed_request(authority, order, NOW)
    signature = AuthoritySignature.of(authority.key_id, headers[SIGNATURE_HEADER], body)
    trusted = _keys(authority).get
    verified = check_authority_signature(signature, _forwarded(order), trusted)  # type: ignore[arg-type]
    assert verified.key_id == authority.key_id and verified.sent_at == NOW  # hours later still fine: no window
    altered = _forwarded(order).model_copy(update={"urls": ["https://video.example/v/other"]})
    with pytest.raises(Refused) as refused:
        check_authority_signature(signature, altered, trusted)  # type: ignore[arg-type]
    assert refused.value.reason is RefusalReason.AUTHORITY_SIGNATURE and refused.value.status == 403
    with pytest.raises(Refused) as refused:  # a key this receiver does not trust: the caller decides
        check_authority_signature(signature, _forwarded(order), _keys(stranger).get)  # type: ignore[arg-type]
    assert refused.value.reason is RefusalReason.UNKNOWN_KEY
    other_body, _ = signed_request(authority, make_order("FR-OTHER"), NOW)
    swapped = AuthoritySignature.of(authority.key_id, headers[SIGNATURE_HEADER], other_body)  # header of another body
    with pytest.raises(Refused, match="does not match the body"):
        check_authority_signature(swapped, _forwarded(make_order("FR-OTHER")), trusted)  # type: ignore[arg-type]


def test_only_a_forwarded_envelope_may_carry_the_authority_s_signature() -> None:
    key = SigningKey.generate()
    body, headers = signed_request(key, make_order(), NOW)
    carried = {**envelope(_forwarded(make_order())),
               AUTHORITY_SIGNATURE: AuthoritySignature.of(key.key_id, headers[SIGNATURE_HEADER], body).model_dump()}
    with pytest.raises(InvalidMessage, match="body must be"):
        parse(carried)
    assert parse(carried, attested=True) == _forwarded(make_order())
    assert attestation(carried) is not None and attestation(envelope(make_order())) is None
    with pytest.raises(InvalidMessage, match=r"authority_signature\.key_id"):
        attestation({**carried, AUTHORITY_SIGNATURE: {**carried[AUTHORITY_SIGNATURE], "key_id": "not hex"}})
