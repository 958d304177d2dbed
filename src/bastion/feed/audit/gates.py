"""The audit's only view of the feed gate: a small Protocol, so the audit runs against any Bastion that serves
``POST /v1/feed/filter`` and imports nothing of the gate's code.

Two ways to get one: ``HttpGate`` to a running Bastion holding the platform's content; or the offline audit, which
starts a Bastion on loopback, registers the synthetic catalogue through the public API (``register_catalogue``:
harmful items removed and borderline items kept out of recommendations by moderators' decisions, as on a real
platform) and then uses ``HttpGate`` against it. Either way the gate is called over real HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bastion.feed.audit.catalogue import Catalogue, Label


@dataclass(frozen=True)
class Viewer:
    account_id: str
    age: int


class Gate(Protocol):
    def filter(self, viewer: Viewer, content_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The ids of ``content_ids`` the viewer may not be recommended, each with the gate's reason codes."""
        ...


class GateError(Exception):
    """The gate did not answer with the contract's shape: the audit stops rather than count unfiltered items."""


class HttpGate:
    """``POST {bastion}/v1/feed/filter`` with ``{"viewer": {"account_id", "age"}, "candidates": [...]}``."""

    def __init__(self, base_url: str, token: str, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client or httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"})

    def filter(self, viewer: Viewer, content_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        body = {"viewer": {"account_id": viewer.account_id, "age": viewer.age}, "candidates": list(content_ids)}
        try:
            r = self.client.post(f"{self.base_url}/v1/feed/filter", json=body)
            r.raise_for_status()
            data = r.json()
            excluded = {str(e["content_id"]): tuple(str(c) for c in e["reasons"]) for e in data["excluded"]}
            eligible = [str(c) for c in data["eligible"]]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise GateError(f"the gate at {self.base_url} failed: {type(exc).__name__}: {exc}") from None
        if set(eligible) | set(excluded) != set(content_ids):  # fail closed: an item the gate did not answer for
            missing = set(content_ids) - set(eligible) - set(excluded)
            excluded.update(dict.fromkeys(missing, ("unknown",)))
        return excluded


def serves_gate(base_url: str, token: str) -> bool:
    """Whether the Bastion at ``base_url`` serves the gate: an empty question, answered (True) or 404 (False)."""
    try:
        r = httpx.post(f"{base_url.rstrip('/')}/v1/feed/filter", timeout=30,
                       headers={"Authorization": f"Bearer {token}"},
                       json={"viewer": {"account_id": "audit-probe", "age": 30}, "candidates": []})
    except httpx.HTTPError as exc:
        raise GateError(f"the gate at {base_url} failed: {type(exc).__name__}: {exc}") from None
    if r.status_code == 404:
        return False
    _ok(r)
    return True


@dataclass(frozen=True)
class Tokens:
    """What registering needs: a platform's token (uploads, notices) and a moderator's (decisions)."""

    platform: str
    moderator: str


#: The notice category and the decision each label gets when the catalogue is registered.
_NOTICE = {"war": "disinformation", "news": "disinformation"}
_ACTIONS = {Label.HARMFUL: ["remove"], Label.BORDERLINE: ["not_recommended"]}


def register_catalogue(base_url: str, tokens: Tokens, catalogue: Catalogue,
                       progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Register every item as a text upload (``POST /v1/content``), report each harmful or borderline one
    (``POST /v1/notices``), and decide the cases from the review queue as a moderator would (remove the harmful,
    keep the borderline out of recommendations). Returns how many items were registered and decided."""
    base = base_url.rstrip("/")
    labels = catalogue.by_id()
    platform = {"Authorization": f"Bearer {tokens.platform}"}
    moderator = {"Authorization": f"Bearer {tokens.moderator}"}
    decided = 0
    with httpx.Client(timeout=60) as client:
        for n, item in enumerate(catalogue.items, 1):
            _ok(client.post(f"{base}/v1/content", headers=platform, data={
                "content_id": item.content_id, "account_id": f"syn-uploader-{item.topic}", "account_age": "30",
                "account_country": "FR", "content_type": "text", "text": f"{item.topic} video {item.content_id}"}))
            if item.label in _ACTIONS:
                _ok(client.post(f"{base}/v1/notices", headers=platform, json={
                    "content_id": item.content_id, "category": _NOTICE.get(item.topic, "borderline"),
                    "explanation": f"synthetic catalogue: labelled {item.label.value}", "notifier": "feed-audit"}))
            if progress is not None:
                progress(n)
        queues = [q["name"] for q in _ok(client.get(f"{base}/v1/queues", headers=moderator))["queues"]
                  if q["open"]]
        for queue in queues:
            while (r := client.post(f"{base}/v1/queues/{queue}/claim", headers=moderator)).status_code == 200:
                case = r.json()
                known = labels.get(case["content_id"])
                actions = _ACTIONS.get(known.label) if known is not None else None
                body: dict[str, Any] = {"violation": True, "actions": actions} if actions else {"violation": False}
                _ok(client.post(f"{base}/v1/cases/{case['id']}/decision", headers=moderator,
                                json={**body, "note": "synthetic catalogue"}))
                decided += 1
            if r.status_code != 404:
                _ok(r)
    return {"registered": len(catalogue.items), "decided": decided}


#: How long ``await_decisions`` waits for the gate to take in the catalogue's decisions.
GATE_CATCH_UP_SECONDS = 30.0


def await_decisions(gate: Gate, catalogue: Catalogue, timeout: float = GATE_CATCH_UP_SECONDS) -> None:
    """Wait until the gate withholds every harmful and borderline item of ``catalogue`` (from an adult). The gate
    follows the moderation log (``feed/view.py``): the decisions ``register_catalogue`` just took reach it within a
    refresh interval, not at once, and an audit started sooner would count as served items the gate had not yet
    heard were decided."""
    decided = [i.content_id for i in catalogue.items if i.label in _ACTIONS]
    viewer = Viewer("audit-catch-up", 30)
    deadline = time.monotonic() + timeout
    while missing := sorted(set(decided) - set(gate.filter(viewer, decided))):
        if time.monotonic() > deadline:
            raise GateError(f"the gate still serves {len(missing)} decided catalogue items after {timeout:.0f} s "
                            f"(first: {missing[0]})")
        time.sleep(0.05)


def _ok(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        raise GateError(f"{r.request.method} {r.request.url.path} answered {r.status_code}: {r.text[:300]}")
    return r.json()
