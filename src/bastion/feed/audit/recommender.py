"""Recommenders the audit can drive: the bundled reference recommender (engagement-driven, over the synthetic
catalogue) and a platform's own over HTTP (the contract in docs/feed-audit.md).

Both are stateless: every request carries the persona's whole watch history, so a run is reproducible and a
platform's recommender need keep nothing about the sock puppet.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bastion.feed.audit.catalogue import Catalogue, Label, similarity


@dataclass(frozen=True)
class Watched:
    """One item of a persona's history: what it was and how long the persona watched it."""

    content_id: str
    topic: str
    seconds: float
    fraction: float

    def to_json(self) -> dict[str, Any]:
        return {"content_id": self.content_id, "topic": self.topic, "watched_seconds": round(self.seconds, 2),
                "fraction": round(self.fraction, 3)}


@dataclass(frozen=True)
class RecommendRequest:
    persona_id: str
    session_minute: float
    history: Sequence[Watched]
    exclude: Sequence[str]  # items already served or withheld by the gate: never offered again

    def to_json(self) -> dict[str, Any]:
        return {"persona_id": self.persona_id, "session_minute": round(self.session_minute, 3),
                "history": [w.to_json() for w in self.history], "exclude": list(self.exclude)}


@dataclass(frozen=True)
class Candidate:
    """An item the recommender offers; ``seconds`` its length (30 s when a platform does not say); ``appeal`` and
    ``hook`` how well it holds a viewer (the catalogue's, else a neutral 0.5 and 0)."""

    content_id: str
    topic: str
    label: Label
    seconds: int
    appeal: float = 0.5
    hook: float = 0.0


class Recommender(Protocol):
    name: str

    def recommend(self, request: RecommendRequest) -> list[Candidate]:
        """The next slate, best first."""
        ...


class RecommenderError(Exception):
    """The platform's recommender did not answer with the contract's shape."""


class ReferenceRecommender:
    """Engagement-driven: an item's score is its appeal times the viewer's affinity for its topic, learnt from how
    much of each recent item they watched. Nothing in it looks at labels; harmful items rise because they hold
    attention longer. A quarter of each slate explores (trending items), as new-account feeds do."""

    name = "reference"

    def __init__(self, catalogue: Catalogue, seed: int, slate: int = 8, memory: int = 30) -> None:
        self.catalogue, self.seed, self.slate, self.memory = catalogue, seed, slate, memory

    def _affinity(self, history: Sequence[Watched]) -> dict[str, float]:
        topics = {i.topic for i in self.catalogue.items}
        recent = history[-self.memory:]
        affinity = dict.fromkeys(topics, 0.0)
        for age, w in enumerate(reversed(recent)):
            # only watching beyond a swipe is a signal; a video watched to the end says the most
            weight = max(0.0, w.fraction - 0.35) * 2 * 0.93 ** age
            for topic in topics:
                affinity[topic] += weight * similarity(w.topic, topic)
        return affinity

    def recommend(self, request: RecommendRequest) -> list[Candidate]:
        rng = random.Random(f"recommend:{self.seed}:{request.persona_id}:{len(request.history)}:{len(request.exclude)}")
        excluded = set(request.exclude)
        affinity = self._affinity(request.history)
        scored: list[tuple[float, int]] = []
        for n, item in enumerate(self.catalogue.items):
            if item.content_id in excluded:
                continue
            lean = 1.0 - math.exp(-affinity[item.topic])  # 0: never watched; near 1: watched through, often
            predicted = item.appeal * (0.6 + 1.5 * lean) + 3.0 * item.hook * lean
            scored.append((predicted * math.exp(rng.gauss(0, 0.25)), n))
        scored.sort(reverse=True)
        explore = max(1, self.slate // 4)
        chosen = [n for _, n in scored[:self.slate - explore]]
        rest = [n for _, n in scored[self.slate - explore:]]
        trending = sorted(rest, key=lambda n: -self.catalogue.items[n].appeal)[:40]
        for n in rng.sample(trending, min(explore, len(trending))):  # interleaved, as a feed mixes them in
            chosen.insert(rng.randint(0, len(chosen)), n)
        return [Candidate(i.content_id, i.topic, i.label, i.seconds, i.appeal, i.hook)
                for i in (self.catalogue.items[n] for n in chosen)]


def request_from_json(data: dict[str, Any]) -> RecommendRequest:
    """A contract request as a recommender receives it (the reference recommender served over HTTP uses it)."""
    history = [Watched(str(h["content_id"]), str(h.get("topic", "")), float(h["watched_seconds"]),
                       float(h["fraction"])) for h in data.get("history", [])]
    return RecommendRequest(str(data["persona_id"]), float(data["session_minute"]), history,
                            [str(c) for c in data.get("exclude", [])])


def answer_json(slate: Sequence[Candidate]) -> dict[str, Any]:
    """A slate in the contract's answer shape."""
    return {"items": [{"content_id": c.content_id, "topic": c.topic, "seconds": c.seconds}
                      | ({"label": c.label.value} if c.label is not Label.UNLABELLED else {}) for c in slate]}


class HttpRecommender:
    """A platform's recommender: ``POST {url}/recommend`` with the request, answered ``{"items": [...]}``."""

    name = "http"

    def __init__(self, url: str, token: str = "", catalogue: Catalogue | None = None,
                 client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self.known = catalogue.by_id() if catalogue is not None else {}
        self.client = client or httpx.Client(timeout=30,
                                             headers={"Authorization": f"Bearer {token}"} if token else {})

    def recommend(self, request: RecommendRequest) -> list[Candidate]:
        try:
            r = self.client.post(f"{self.url}/recommend", json=request.to_json())
            r.raise_for_status()
            items = r.json()["items"]
            return [self._candidate(dict(i)) for i in items]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise RecommenderError(f"the recommender at {self.url} failed: {type(exc).__name__}: {exc}") from None

    def _candidate(self, data: dict[str, Any]) -> Candidate:
        content_id = str(data["content_id"])
        known = self.known.get(content_id)
        label = Label(data["label"]) if data.get("label") else known.label if known else Label.UNLABELLED
        return Candidate(content_id, str(data.get("topic") or (known.topic if known else "")), label,
                         int(data.get("seconds") or (known.seconds if known else 30)),
                         known.appeal if known else 0.5, known.hook if known else 0.0)
