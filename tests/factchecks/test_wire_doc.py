"""docs/factchecks.md's worked example, recomputed: an outside client written from the page signs as Bastion checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

from bastion.core import signing

DOC = (Path(__file__).parents[2] / "docs" / "factchecks.md").read_text()


def _block(after: str) -> str:
    found = re.search(re.escape(after) + r".*?```\n(.*?)\n```", DOC, re.DOTALL)
    assert found, after
    return found.group(1)


def test_the_worked_example_is_what_bastion_computes_and_accepts() -> None:
    private = re.search(r"Private key.*?`([A-Za-z0-9_-]+)`", DOC)
    assert private
    key = signing.SigningKey.from_text(private.group(1))
    assert f"Public key: `{key.public_text}`, key id `{key.key_id}`" in DOC
    body = _block("Body (exact bytes):").encode()
    assert f"Its SHA-256: `{hashlib.sha256(body).hexdigest()}`" in DOC
    now = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
    assert _block("the statement signed is") == signing.statement(key.key_id, int(now.timestamp()), "c0ffee01",
                                                                  body).decode()
    header = _block("and the header is")
    assert header == f"Bastion-Ed25519: {key.headers(body, now, nonce='c0ffee01')['Bastion-Ed25519']}"
    name, _, value = header.partition(": ")
    verified = signing.verify({name: value}, body, now=now, keys=lambda k: key.public if k == key.key_id else None)
    assert verified.key_id == key.key_id
