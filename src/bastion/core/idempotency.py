"""Fingerprints of requests, so an idempotency key replays only the request it was first given.

A key alone is not enough: a client that reuses a key with a different body (other media, another account) must not
get the first answer back, or the new request would never be looked at. Each endpoint that replays on a key stores
the fingerprint of what it accepted and compares it with the repeat's: equal, replay; different, 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping


def fingerprint(fields: Mapping[str, object]) -> str:
    """SHA-256 (hex) of ``fields`` in canonical JSON: sorted keys, no spaces, UTF-8.

    Values must be JSON types; media goes in as its digest, never its bytes. Two requests have the same fingerprint
    exactly when every field is equal (``27`` and ``27.0`` differ: normalise numbers before calling).
    """
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
