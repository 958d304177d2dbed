"""Shared helpers of the feed tests: uploads and decisions over HTTP, and waiting for the view to follow."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.hashing.services import hash_path

Header = Callable[[Role], dict[str, str]]


def pdq(path: Path) -> str:
    return next(s.value for s in hash_path(path).signals if s.signal_type == "pdq")


def flip(value: str, bits: int) -> str:
    n = int(value, 16)
    for i in range(bits):
        n ^= 1 << (i * 9 + 3)
    return f"{n:064x}"


def bank(client: TestClient, h: Header, name: str, value: str, category: str) -> None:
    assert client.post("/v1/banks", json={"name": name}, headers=h(Role.CURATOR)).status_code in (201, 409)
    r = client.post(f"/v1/banks/{name}/entries", json={"signal_type": "pdq", "value": value, "category": category},
                    headers=h(Role.CURATOR))
    assert r.status_code == 201, r.text


def upload(client: TestClient, h: Header, content_id: str, path: Path | None = None, **form: str) -> dict[str, Any]:
    data = {"content_id": content_id, "account_id": "acct-1", "account_age": "27", "account_country": "FR",
            "content_type": "image" if path else "text", **form}
    if path is None:
        data.setdefault("text", f"a holiday picture {content_id}")
        r = client.post("/v1/content", data=data, headers=h(Role.PLATFORM))
    else:
        with path.open("rb") as f:
            r = client.post("/v1/content", data=data, files={"media": (path.name, f, "image/jpeg")},
                            headers=h(Role.PLATFORM))
    assert r.status_code == 200, r.text
    return dict(r.json())


def decide(client: TestClient, h: Header, queue: str, actions: list[str], **extra: object) -> dict[str, Any]:
    mod = h(Role.MODERATOR)
    case = client.post(f"/v1/queues/{queue}/claim", headers=mod).json()
    r = client.post(f"/v1/cases/{case['id']}/decision", json={"violation": True, "actions": actions, **extra},
                    headers=mod)
    assert r.status_code == 200, r.text
    return dict(r.json())


def feed(client: TestClient, h: Header, viewer: object, candidates: list[str]) -> dict[str, Any]:
    r = client.post("/v1/feed/filter", json={"viewer": viewer, "candidates": candidates}, headers=h(Role.PLATFORM))
    assert r.status_code == 200, r.text
    return dict(r.json())


def until(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    """The view follows the event log in the background: wait for it (eventual, not a speed check)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
