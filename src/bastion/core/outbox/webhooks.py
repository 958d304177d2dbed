"""Signed JSON webhooks: the ``Sender`` for platform endpoints, and the check receivers run on what they get.

The signature covers a timestamp and the exact body bytes (``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``), so a
receiver can tell a message came from us, unaltered, and recently (an old capture replayed later fails). Repeats
within the tolerance are expected, since delivery is at-least-once; receivers drop them by ``Idempotency-Key``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from types import TracebackType
from typing import Any, Protocol

import httpx

from bastion.core.clock import Clock, SystemClock
from bastion.core.outbox.delivery import Claim, SendResult, is_permanent_status, short_error

SIGNATURE_HEADER = "Bastion-Signature"
EVENT_HEADER = "Bastion-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def canonical_body(payload: Any) -> bytes:
    """One byte sequence per payload: sorted keys, no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Bastion-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: bytes, header: str, body: bytes | str, *, now: dt.datetime, tolerance: float = 300
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` seconds of ``now``.

    Several ``v1=`` values are accepted (any may match) so a sender can sign with an old and a new secret while
    the secret is rotated. Malformed headers are simply false.
    """
    raw = body.encode() if isinstance(body, str) else body
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not value.isdigit():
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs(now.timestamp() - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, raw)
    # Compare every candidate, so the time taken does not say which one (or whether any) came close.
    matches = [hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in candidates]
    return any(matches)


class BodySigner(Protocol):
    """Signs a body another way than the shared HMAC secret (e.g. Ed25519 for removal orders): returns headers."""

    def headers(self, body: bytes, now: dt.datetime) -> dict[str, str]: ...


class WebhookSender:
    """POSTs each claim's payload as signed canonical JSON: with ``signer`` when given (this end's Ed25519 key for
    the TCO wire), else with the HMAC ``secret``. Which kinds go through which sender is the app's ``Routes`` table.

    Network errors, 5xx, 408, 425 and 429 are retryable; other 4xx are permanent; a bad URL is permanent.
    Without a secret it sends nothing (a retryable failure), so an unconfigured install can still start.
    Errors it reports name the failure only: never the secret, the response body or the payload.
    Don't: follow redirects (a signed message must go where it was addressed), or log headers.
    """

    def __init__(
        self,
        secret: bytes,
        timeout: float = 10,
        client: httpx.Client | None = None,
        *,
        clock: Clock | None = None,
        signer: BodySigner | None = None,
    ) -> None:
        self.timeout = timeout
        self._secret = secret
        self._signer = signer
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"WebhookSender(timeout={self.timeout})"

    @property
    def configured(self) -> bool:
        return bool(self._secret)

    def send(self, claim: Claim) -> SendResult:
        signer = self._signer
        if not self._secret and signer is None:
            # Never send unsigned. Retryable, so setting the secret within the retry window still delivers it.
            return SendResult.retry("webhook secret not configured")
        body = canonical_body(claim.payload)
        now = self._clock.now()
        signature = signer.headers(body, now) if signer is not None \
            else {SIGNATURE_HEADER: sign(self._secret, int(now.timestamp()), body)}
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: claim.idempotency_key,
            EVENT_HEADER: claim.kind,
            **signature,
            "User-Agent": "bastion-outbox",
        }
        try:
            response = self._client.post(claim.destination, content=body, headers=headers, timeout=self.timeout)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return SendResult.give_up(f"bad destination URL ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return SendResult.retry(self._describe(exc, claim.destination))
        status = response.status_code
        if 200 <= status < 300:
            return SendResult.delivered(status)
        if is_permanent_status(status):
            return SendResult.give_up(f"HTTP {status}", status)
        return SendResult.retry(f"HTTP {status}", status)

    @staticmethod
    def _describe(exc: Exception, destination: str) -> str:
        # The URL may carry a token in its query or user-info: keep it out of last_error.
        text = f"{type(exc).__name__}: {exc}".replace(destination, "<destination>")
        return short_error(text)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
