"""What authorities, the hub and contact points say to each other, and how each message is signed.

Every message is the canonical JSON (sorted keys, no spaces, UTF-8) of ``{"type": ..., "message": ...}``; the
``message`` is one of the models below, named after the annexes of Regulation (EU) 2021/784. A message is signed
with Ed25519 at the moment it is sent, over a canonical statement of the key, the time, a one-time nonce and the
SHA-256 of the body, so a retry by the outbox gets a fresh signature and an old capture replayed later does not pass.
The receiver checks the signature against the keys it has registered (``verify``) and refuses a nonce it has seen
(``orders/services.py: remember_nonce``); a repeat of the same order reference is the same order, not a new one.
"""

from __future__ import annotations

import binascii
import datetime as dt
import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from bastion.core import signing
from bastion.core.errors import DomainError
from bastion.core.eu import member_state
from bastion.core.outbox.webhooks import canonical_body
from bastion.core.signing import b64, header_fields, signed_by, unb64
from bastion.core.validators import http_url

LEGAL_BASIS: Final = "Regulation (EU) 2021/784, Article 3"

# The shared signing code (``core/signing.py``), named here too: orders, the hub and authorities' clients use it.
SIGNATURE_HEADER = signing.SIGNATURE_HEADER
DEFAULT_WINDOW_SECONDS = signing.DEFAULT_WINDOW_SECONDS
SigningKey = signing.SigningKey
RefusalReason = signing.RefusalReason
Refused = signing.Refused
Verified = signing.Verified
key_id = signing.key_id
load_public_key = signing.load_public_key
public_key_text = signing.public_key_text
signature_header = signing.signature_header
verify = signing.verify


# --- field types --------------------------------------------------------------------------------------------------



def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("a date and time needs its UTC offset (e.g. 2026-11-29T10:00:00Z)")
    return value.astimezone(dt.UTC)


MemberState = Annotated[str, AfterValidator(member_state)]
UtcTime = Annotated[dt.datetime, AfterValidator(_aware)]
WebUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(http_url)]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
Line = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Prose = Annotated[str, StringConstraints(min_length=1, max_length=5000)]


class MaterialType(enum.StrEnum):
    """Annex I section B tick-boxes, following Art. 2(7). Values are storage keys: never rename."""

    INCITES = "incites"  # (a) incites to commit terrorist offences
    SOLICITS_OFFENCE = "solicits_offence"  # (b) solicits a person or group to commit or contribute to them
    SOLICITS_PARTICIPATION = "solicits_participation"  # (c) solicits participation in a terrorist group
    INSTRUCTS = "instructs"  # (d) instruction on explosives, firearms, weapons, hazardous substances, methods
    THREATENS = "threatens"  # (e) threatens to commit a terrorist offence


class AuthorityType(enum.StrEnum):
    """Annex I section E: the kind of issuing authority."""

    JUDICIAL = "judicial"  # judge, court or investigating judge
    LAW_ENFORCEMENT = "law_enforcement"
    OTHER = "other"  # other competent authority


class ActionTaken(enum.StrEnum):
    """Annex II section B: what the provider did."""

    REMOVED = "removed"
    DISABLED = "disabled"  # access disabled in all Member States


class InabilityReason(enum.StrEnum):
    """Annex III section B tick-boxes."""

    FORCE_MAJEURE = "force_majeure"  # or de facto impossibility, incl. objectively justifiable technical reasons
    MANIFEST_ERROR = "manifest_error"
    INSUFFICIENT_INFORMATION = "insufficient_information"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- Annex I: the removal order, and the voluntary referral ----------------------------------------------------------


class IssuingAuthority(_Message):
    """Annex I section E."""

    type: AuthorityType
    name: Line
    member_state: MemberState
    representative: str = Field(default="", max_length=300)
    file_number: Line
    address: str = Field(default="", max_length=1000)
    telephone: str = Field(default="", max_length=50)
    email: Line


class Redress(_Message):
    """Annex I section G: where and by when the order can be challenged."""

    body: Line  # competent body or court
    deadline: Line  # e.g. "two months from receipt"
    law: str = Field(default="", max_length=2000)  # link to the national law


#: Art. 11(3): the content provider may be kept uninformed for six weeks, extended by six at most.
MAX_NON_DISCLOSURE = dt.timedelta(weeks=12)


class RemovalOrder(_Message):
    """Every field of Annex I. ``reference`` is the authority's number; the hub sends its own (unique) one."""

    # A
    reference: Reference
    issuing_member_state: MemberState
    addressee: Line  # the provider or its legal representative
    contact_point: WebUrl
    establishment_member_state: MemberState  # of main establishment or legal representative
    issued_at: UtcTime
    # B
    urls: list[WebUrl] = Field(min_length=1, max_length=100)
    content_ids: list[Line] = Field(default_factory=list, max_length=100)  # further identification of the content
    reasons: Prose
    material_types: list[MaterialType] = Field(min_length=1, max_length=5)
    additional_reasons: str = Field(default="", max_length=5000)
    legal_basis: Literal["Regulation (EU) 2021/784, Article 3"] = LEGAL_BASIS
    # C: Art. 11(3)
    non_disclosure: bool = False
    non_disclosure_until: UtcTime | None = None
    # E, F, G
    authority: IssuingAuthority
    follow_up_contact: Line
    redress: Redress

    @model_validator(mode="after")
    def _consistent(self) -> RemovalOrder:
        if self.authority.member_state != self.issuing_member_state:
            raise ValueError("authority.member_state must be the issuing Member State")
        if len(set(self.material_types)) != len(self.material_types):
            raise ValueError("material_types repeats a type")
        if self.non_disclosure != (self.non_disclosure_until is not None):
            raise ValueError("non_disclosure and non_disclosure_until go together")
        if self.non_disclosure_until is not None and self.non_disclosure_until <= self.issued_at:
            raise ValueError("non_disclosure_until must be after issued_at")
        if self.non_disclosure_until is not None and self.non_disclosure_until - self.issued_at > MAX_NON_DISCLOSURE:
            raise ValueError("non_disclosure_until may be at most six weeks after issued_at, plus one extension "
                             "of six weeks (Art. 11(3)): twelve weeks in all")
        return self

    @property
    def cross_border(self) -> bool:
        """Annex I section D: the provider is established in another Member State, whose authority gets a copy."""
        return self.issuing_member_state != self.establishment_member_state


class Referral(_Message):
    """A voluntary referral: the provider checks the content against its own terms; no one-hour deadline."""

    reference: Reference
    issuing_member_state: MemberState
    addressee: Line
    issued_at: UtcTime
    urls: list[WebUrl] = Field(min_length=1, max_length=100)
    content_ids: list[Line] = Field(default_factory=list, max_length=100)
    reasons: Prose
    authority: IssuingAuthority


# --- Annexes II and III: the provider's answers ---------------------------------------------------------------------


class _Answer(_Message):
    """Section A of Annexes II and III (addressee, issuing authority, its file reference, the addressee's file
    reference, time of receipt), and the provider's section C. ``order_reference`` is the reference the order came
    under (the hub's), so the answer finds its order."""

    order_reference: Reference
    addressee: Line  # the provider or its legal representative, as the order names it
    issuing_authority: Line  # as Annex I section E names it
    authority_file_number: Line
    provider_reference: Line
    received_at: UtcTime
    provider: Line
    member_state: MemberState
    authorised_person: Line
    contact_email: Line
    signed_at: UtcTime


class Feedback(_Answer):
    """Annex II: the content was removed or disabled in all Member States, at ``action_at``."""

    action: ActionTaken
    action_at: UtcTime


class Inability(_Answer):
    """Annex III: the order cannot be executed, and why; the one-hour clock waits for a clarification."""

    reason: InabilityReason
    explanation: Prose


class Clarification(_Message):
    """The authority's answer to an Annex III: what was missing. The one-hour clock restarts on receipt."""

    order_reference: Reference
    explanation: Prose
    urls: list[WebUrl] = Field(default_factory=list, max_length=100)
    content_ids: list[Line] = Field(default_factory=list, max_length=100)


class Reinstatement(_Message):
    """Art. 4 scrutiny found the order infringes the Regulation: it ceases to have effect; restore the content."""

    order_reference: Reference
    member_state: MemberState
    reasons: Prose
    decided_at: UtcTime


class Ack(_Message):
    """The contact point's answer to every order it accepts (the same answer to a repeat)."""

    order_reference: Reference
    provider_reference: Line
    received_at: UtcTime
    state: Line


class ThreatToLife(_Message):
    """Art. 14(5): content that involves an imminent threat to life, reported at once to the competent authority
    of the Member State concerned, or, when none can be identified, to the contact point of the Member State where
    the provider is established and to Europol."""

    content_id: Line
    url: str = Field(default="", max_length=2000)
    member_state: MemberState | None = None  # None: not identified (then: the establishment State and Europol)
    explanation: Prose
    detected_at: UtcTime
    provider: Line
    contact_email: Line


WireMessage = RemovalOrder | Referral | Feedback | Inability | Clarification | Reinstatement | ThreatToLife


class MessageType(enum.StrEnum):
    """The ``type`` of an envelope. Values are storage keys: never rename."""

    REMOVAL_ORDER = "removal_order"
    REFERRAL = "referral"
    FEEDBACK = "feedback"
    INABILITY = "inability"
    CLARIFICATION = "clarification"
    REINSTATEMENT = "reinstatement"
    THREAT_TO_LIFE = "threat_to_life"


MODELS: dict[MessageType, type[WireMessage]] = {
    MessageType.REMOVAL_ORDER: RemovalOrder,
    MessageType.REFERRAL: Referral,
    MessageType.FEEDBACK: Feedback,
    MessageType.INABILITY: Inability,
    MessageType.CLARIFICATION: Clarification,
    MessageType.REINSTATEMENT: Reinstatement,
    MessageType.THREAT_TO_LIFE: ThreatToLife,
}
_TYPES: dict[type[WireMessage], MessageType] = {model: kind for kind, model in MODELS.items()}


class InvalidMessage(DomainError, ValueError):
    """The body is not a well-formed message: answered 422 with the first problem, and every problem in ``errors``."""

    status = 422
    title = "Invalid message"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []

    def problem_extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


def envelope(message: WireMessage) -> dict[str, Any]:
    """The JSON object sent on the wire (before canonical encoding)."""
    return {"type": _TYPES[type(message)].value, "message": message.model_dump(mode="json")}


#: Where a contact point takes messages, below its base URL.
ORDERS_PATH: Final = "/v1/orders"


def contact_point_base(url: str) -> str:
    """A contact point's base URL, the form the hub registers and sends: ``https://platform.example`` for that and
    for ``https://platform.example/v1/orders`` alike (an order may name either)."""
    url = url.rstrip("/")
    return url.removesuffix(ORDERS_PATH).rstrip("/") if url.endswith(ORDERS_PATH) else url


def parse(body: Any, *, expect: tuple[MessageType, ...] = tuple(MessageType), attested: bool = False) -> WireMessage:
    """Validate an envelope; raises ``InvalidMessage`` naming the first bad field. ``attested``: the envelope may
    also carry the issuing authority's signature (``AUTHORITY_SIGNATURE``), as the hub forwards an order."""
    allowed = {"type", "message", AUTHORITY_SIGNATURE} if attested else {"type", "message"}
    if not isinstance(body, dict) or not {"type", "message"} <= set(body) <= allowed:
        raise InvalidMessage('the body must be {"type": ..., "message": {...}}')
    try:
        kind = MessageType(body["type"])
    except ValueError:
        raise InvalidMessage(f"unknown message type {body['type']!r}") from None
    if kind not in expect:
        raise InvalidMessage(f"a {kind.value} is not accepted here (expected {', '.join(expect)})")
    try:
        return MODELS[kind].model_validate(body["message"])
    except ValidationError as exc:
        errors = [{"loc": ["message", *e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise InvalidMessage(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", errors) from None


# --- keys and signatures (``core/signing.py``) ---------------------------------------------------------------------


def signed_request(key: SigningKey, message: WireMessage, now: dt.datetime) -> tuple[bytes, dict[str, str]]:
    """Body and headers for sending ``message`` by hand (authorities' clients, tests, the benchmark)."""
    body = canonical_body(envelope(message))
    return body, {"Content-Type": "application/json", **key.headers(body, now)}


# --- the issuing authority's signature, carried by the hub (Annex I section E) ------------------------------------

#: The envelope's optional third member: the authority's own signature on the order as it issued it.
AUTHORITY_SIGNATURE: Final = "authority_signature"


class AuthoritySignature(_Message):
    """Annex I section E's electronic signature: the authority's signature header and the exact body it signed.

    The hub sends an order under its own reference and to the provider's registered contact point, so the body it
    forwards is not the one the authority signed; it carries that body beside it. A contact point that trusts the
    authority's key checks the signature and that the forwarded order is the signed one, reference and contact point
    apart. The time window and nonce of the authority's signature are the hub's to check at issue, not the
    receiver's: the order may reach the provider hours later, after retries.
    """

    key_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
    header: Annotated[str, StringConstraints(min_length=1, max_length=400)]
    signed_body: Annotated[str, StringConstraints(min_length=1, max_length=2 * 1024 * 1024)]  # URL-safe base64

    @classmethod
    def of(cls, key_id: str, header: str, body: bytes) -> AuthoritySignature:
        return cls(key_id=key_id, header=header, signed_body=b64(body))

    @property
    def body(self) -> bytes:
        """The exact bytes the authority signed."""
        return unb64(self.signed_body)


def attestation(body: Any) -> AuthoritySignature | None:
    """The authority's signature an envelope carries, if any; raises ``InvalidMessage`` when malformed."""
    if not isinstance(body, dict) or body.get(AUTHORITY_SIGNATURE) is None:
        return None
    try:
        return AuthoritySignature.model_validate(body[AUTHORITY_SIGNATURE])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in (AUTHORITY_SIGNATURE, *first["loc"]))
        raise InvalidMessage(f"{where}: {first['msg']}") from None


def check_authority_signature(signature: AuthoritySignature, forwarded: RemovalOrder | Referral,
                              keys: Callable[[str], Ed25519PublicKey | None]) -> Verified:
    """Check that the authority whose key is in ``keys`` signed ``forwarded`` (reference and contact point apart).

    Raises ``Refused``: ``unknown_key`` when the key is not trusted here (the caller may then rely on the hub's
    signature alone), ``bad_authority_signature`` when the signature or the order does not match.
    """
    def refuse(detail: str) -> Refused:
        return Refused(RefusalReason.AUTHORITY_SIGNATURE, detail, signature.key_id)

    try:
        named = header_fields(signature.header)["key"]
    except Refused:
        raise refuse("the authority's signature header is not key=,t=,nonce=,sig=") from None
    if named != signature.key_id:
        raise refuse("the authority's signature header names another key")
    try:
        body = signature.body
        signed = parse(json.loads(body), expect=(_TYPES[type(forwarded)],))
    except (ValueError, binascii.Error):  # InvalidMessage and JSONDecodeError are ValueErrors
        raise refuse("the body the authority signed is not an order of this kind") from None
    try:
        verified = signed_by(signature.header, body, keys)
    except Refused as refused:
        if refused.reason is RefusalReason.UNKNOWN_KEY:
            raise
        raise refuse("the authority's signature does not match the body it signed") from None
    same = {"reference": forwarded.reference}
    if isinstance(forwarded, RemovalOrder):
        same["contact_point"] = forwarded.contact_point
    if signed.model_copy(update=same) != forwarded:
        raise refuse("the forwarded order differs from the one the authority signed")
    return verified


# --- a signed request, read ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedMessage:
    """A signed request as the contact point and the hub read it: who signed it (signature checked, nonce spent),
    the message, and the issuing authority's own signature a hub forwarded beside an order (``None``: none)."""

    signer: Verified
    message: WireMessage
    authority_signature: AuthoritySignature | None
    body: bytes


def read_envelope(signer: Verified, body: bytes, *, expect: tuple[MessageType, ...],
                  attested: bool = False) -> SignedMessage:
    """The message of a body whose signature ``signer`` says was checked; raises ``InvalidMessage`` (422)."""
    try:
        received = json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        raise InvalidMessage("the body is not JSON") from None
    message = parse(received, expect=expect, attested=attested)
    return SignedMessage(signer, message, attestation(received) if attested else None, body)


# --- the request bodies, for the OpenAPI document -----------------------------------------------------------------

#: What ``Bastion-Ed25519`` carries; the format and the signed statement are in ``docs/wire.md``.
SIGNATURE_PARAMETER: Final[dict[str, Any]] = {
    "name": SIGNATURE_HEADER, "in": "header", "required": True,
    "description": "key=<key id>,t=<Unix seconds>,nonce=<1-64 of A-Z a-z 0-9 . _ : + / = ->,sig=<Ed25519 signature, "
                   "URL-safe base64 without padding> over the canonical statement (docs/wire.md).",
    "schema": {"type": "string", "pattern": r"^key=[0-9a-f]{16},t=[0-9]{1,12},nonce=[A-Za-z0-9._:+/=-]{1,64},"
                                            r"sig=[A-Za-z0-9_-]{86}$"}}


def _inline(schema: Any, defs: Mapping[str, Any]) -> Any:
    """``schema`` with its ``$defs`` references written out, so it stands alone inside an OpenAPI operation."""
    if isinstance(schema, list):
        return [_inline(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return _inline({**defs[ref.removeprefix("#/$defs/")], **rest}, defs)
    return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}


def _standalone(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return inlined


def signed_body(kinds: tuple[MessageType, ...], *, attested: bool = False, description: str = "") -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a signed envelope from the raw body.

    Such a route cannot declare a pydantic body (the signature covers the exact bytes, checked before parsing),
    so the schema is written here from the same models ``parse`` validates with.
    """
    variants = []
    for kind in kinds:
        properties: dict[str, Any] = {"type": {"const": kind.value}, "message": _standalone(MODELS[kind])}
        if attested and kind in (MessageType.REMOVAL_ORDER, MessageType.REFERRAL):
            properties[AUTHORITY_SIGNATURE] = {
                "anyOf": [_standalone(AuthoritySignature), {"type": "null"}],
                "description": "The issuing authority's own signature, forwarded by a hub (Annex I section E)."}
        variants.append({"title": f"{MODELS[kind].__name__} envelope", "type": "object",
                         "required": ["type", "message"], "additionalProperties": False,
                         "properties": properties})
    return {"parameters": [SIGNATURE_PARAMETER], "requestBody": {
        "required": True, "description": description or "A signed envelope (docs/wire.md), sent as exact bytes.",
        "content": {"application/json": {"schema": variants[0] if len(variants) == 1 else {"oneOf": variants}}}}}
