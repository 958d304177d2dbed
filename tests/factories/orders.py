"""Removal orders for tests: a complete Annex I order, and signed requests built the way a sender builds them."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.orders.wire import RemovalOrder, SigningKey


def order_fields(reference: str = "FR-2026-0001", *, urls: list[str] | None = None,
                 content_ids: list[str] | None = None, issued_at: dt.datetime | None = None,
                 member_state: str = "FR", establishment: str = "IE", authority_name: str = "OCLCTIC",
                 contact_point: str = "https://platform.example/v1/orders") -> dict[str, Any]:
    """Every Annex I field, valid; override what a test is about."""
    return {
        "reference": reference,
        "issuing_member_state": member_state,
        "addressee": "Bastion Video Ltd",
        "contact_point": contact_point,
        "establishment_member_state": establishment,
        "issued_at": (issued_at or dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)).isoformat(),
        "urls": urls if urls is not None else ["https://video.example/v/abc123"],
        "content_ids": content_ids or [],
        "reasons": "Video glorifying an attack and calling for further attacks.",
        "material_types": ["incites", "threatens"],
        "additional_reasons": "",
        "non_disclosure": False,
        "non_disclosure_until": None,
        "authority": {"type": "law_enforcement", "name": authority_name, "member_state": member_state,
                      "representative": "Commissaire A. Martin", "file_number": f"PN-{reference}",
                      "address": "1 rue de l'Exemple, Paris", "telephone": "+33 1 00 00 00 00",
                      "email": "tco@authority.example"},
        "follow_up_contact": "tco@authority.example, +33 1 00 00 00 00",
        "redress": {"body": "Tribunal administratif de Paris", "deadline": "two months from receipt",
                    "law": "https://www.legifrance.gouv.fr/"},
    }


def make_order(reference: str = "FR-2026-0001", **overrides: Any) -> RemovalOrder:
    return RemovalOrder.model_validate(order_fields(reference, **overrides))


def raw_signature_header(key: SigningKey, body: bytes, t: int, nonce: str) -> str:
    """A ``Bastion-Ed25519`` header built as ``docs/wire.md`` says, without Bastion's own checks on the nonce: what
    a sender with a client of its own might send."""
    private = Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(key.to_text() + "="))
    statement = json.dumps({"body_sha256": hashlib.sha256(body).hexdigest(), "key": key.key_id, "nonce": nonce,
                            "t": t, "v": 1}, sort_keys=True, separators=(",", ":")).encode()
    signature = base64.urlsafe_b64encode(private.sign(statement)).decode().rstrip("=")
    return f"key={key.key_id},t={t},nonce={nonce},sig={signature}"
