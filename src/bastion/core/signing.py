"""Ed25519 signatures on message bodies: keys, the signature header, and its check.

A body is signed at the moment it is sent, over a canonical statement of the key, the time, a one-time nonce and
the SHA-256 of the body (``Bastion-Ed25519: key=,t=,nonce=,sig=``), so a retry gets a fresh signature and an old
capture replayed later does not pass. Removal orders (``orders/wire.py``) and child-safety reports to the EU Centre
(``reporting/``, ``centre/``) share it. The receiver checks the signature against the keys it has registered
(``verify``) and remembers nonces itself.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bastion.core.errors import DomainError
from bastion.core.outbox.webhooks import canonical_body

SIGNATURE_HEADER = "Bastion-Ed25519"
#: How far a signature's time may be from the receiver's clock (seconds).
DEFAULT_WINDOW_SECONDS = 300

def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 lowercase hex digits of the SHA-256 of its text form
    (``public_key_text``: the URL-safe base64 of the 32 raw bytes, without ``=`` padding, as ASCII).

    The text, not the raw bytes, because the text is what people exchange and register (``--key``), so anyone can
    work out a key id from what they were given; ``docs/wire.md`` shows one worked out. Key ids are stored (trusted
    keys, received orders, the Centre's provider keys): never change this derivation.
    """
    return hashlib.sha256(public_key_text(public).encode()).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    return b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key as ``public_key_text`` writes it (URL-safe base64 of the 32 raw bytes)."""
    try:
        raw = unb64(text.strip())
        if len(raw) != 32:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error):
        raise ValueError("not an Ed25519 public key (URL-safe base64 of 32 bytes)") from None


class SigningKey:
    """An Ed25519 private key. Its text form is a secret: never log it (``repr`` does not show it)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_text(cls, text: str) -> SigningKey:
        try:
            raw = unb64(text.strip())
            if len(raw) != 32:
                raise ValueError
            return cls(Ed25519PrivateKey.from_private_bytes(raw))
        except (ValueError, binascii.Error):
            raise ValueError("not an Ed25519 private key (URL-safe base64 of 32 bytes)") from None

    def to_text(self) -> str:
        return b64(self._private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                serialization.NoEncryption()))

    @property
    def public_text(self) -> str:
        return public_key_text(self.public)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"

    def headers(self, body: bytes, now: dt.datetime, nonce: str | None = None) -> dict[str, str]:
        """The signature header for ``body`` sent at ``now``; a fresh nonce unless one is given (tests)."""
        timestamp = int(now.timestamp())
        nonce = nonce or secrets.token_hex(16)
        if not NONCE.fullmatch(nonce):
            raise ValueError("a nonce is 1 to 64 characters of A-Z a-z 0-9 . _ : + / = -")
        signature = self._private.sign(statement(self.key_id, timestamp, nonce, body))
        return {SIGNATURE_HEADER: f"key={self.key_id},t={timestamp},nonce={nonce},sig={b64(signature)}"}


def statement(key: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """What is signed: canonical JSON naming the key, time, nonce and the body's digest."""
    return canonical_body({"body_sha256": hashlib.sha256(body).hexdigest(), "key": key, "nonce": nonce,
                           "t": timestamp, "v": 1})


class RefusalReason(enum.StrEnum):
    UNSIGNED = "unsigned"
    MALFORMED = "malformed_signature"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"  # altered body, or signed by another key
    STALE = "outside_time_window"
    REPLAYED = "replayed"
    NOT_ALLOWED = "not_allowed"  # a known key that may not send this
    AUTHORITY_SIGNATURE = "bad_authority_signature"  # a forwarded order its trusted authority did not sign so


_REFUSAL_TITLES = {
    RefusalReason.UNSIGNED: (401, "Unsigned message"),
    RefusalReason.MALFORMED: (401, "Malformed signature"),
    RefusalReason.UNKNOWN_KEY: (401, "Unknown signing key"),
    RefusalReason.BAD_SIGNATURE: (401, "Bad signature"),
    RefusalReason.STALE: (401, "Signature outside the time window"),
    RefusalReason.REPLAYED: (409, "Replayed message"),
    RefusalReason.NOT_ALLOWED: (403, "Sender not allowed"),
    RefusalReason.AUTHORITY_SIGNATURE: (403, "The issuing authority's signature does not match"),
}


class Refused(DomainError):
    """A message that is not accepted, and why; ``status`` and ``title`` are its problem+json answer."""

    def __init__(self, reason: RefusalReason, detail: str, key: str = "") -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.key = key
        self.status, self.title = _REFUSAL_TITLES[reason]

    def problem_extra(self) -> dict[str, Any]:
        return {"reason": self.reason.value}


@dataclass(frozen=True)
class Verified:
    """Who signed a message, with which nonce and when."""

    key_id: str
    nonce: str
    sent_at: dt.datetime


def header_fields(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in fields or not value:
            raise Refused(RefusalReason.MALFORMED, f"the {SIGNATURE_HEADER} header is not key=,t=,nonce=,sig=")
        fields[name] = value
    if set(fields) != {"key", "t", "nonce", "sig"} or not _TIMESTAMP.fullmatch(fields["t"]) \
            or not NONCE.fullmatch(fields["nonce"]) or not _TOKEN.fullmatch(fields["key"]):
        raise Refused(RefusalReason.MALFORMED, f"the {SIGNATURE_HEADER} header is not key=,t=,nonce=,sig=")
    return fields


#: ASCII only: ``str.isdigit`` accepts digits ``int`` refuses (superscripts), which would end as a 500.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_TOKEN = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
#: A nonce: 1 to 64 of these characters (receivers keep each for the time window, in a column of 64).
NONCE = re.compile(r"[A-Za-z0-9._:+/=-]{1,64}")


def signed_by(header: str, body: bytes, keys: Callable[[str], Ed25519PublicKey | None]) -> Verified:
    """Who signed ``body`` with ``header``, whenever that was; raises ``Refused``."""
    fields = header_fields(header)
    public = keys(fields["key"])
    if public is None:
        raise Refused(RefusalReason.UNKNOWN_KEY, f"key {fields['key']!r} is not registered here", fields["key"])
    timestamp = int(fields["t"])
    try:
        public.verify(unb64(fields["sig"]), statement(fields["key"], timestamp, fields["nonce"], body))
    except (InvalidSignature, ValueError, binascii.Error):
        raise Refused(RefusalReason.BAD_SIGNATURE, "the signature does not match the body", fields["key"]) from None
    return Verified(fields["key"], fields["nonce"], dt.datetime.fromtimestamp(timestamp, dt.UTC))


def verify(headers: Mapping[str, str], body: bytes, *, keys: Callable[[str], Ed25519PublicKey | None],
           now: dt.datetime, window_seconds: float = DEFAULT_WINDOW_SECONDS) -> Verified:
    """Check the signature on ``body``; raises ``Refused``. The nonce is the caller's to remember."""
    header = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower())
    if not header:
        raise Refused(RefusalReason.UNSIGNED, f"a {SIGNATURE_HEADER} signature header is required")
    verified = signed_by(header, body, keys)
    if abs(now.timestamp() - verified.sent_at.timestamp()) > window_seconds:
        raise Refused(RefusalReason.STALE, f"signed more than {window_seconds:.0f} s from now", verified.key_id)
    return verified


def signature_header(headers: Mapping[str, str]) -> str:
    """The ``Bastion-Ed25519`` header of a request, as sent (empty when absent)."""
    return headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
