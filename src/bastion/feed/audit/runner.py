"""Runs an audit: each persona watches the feed for N simulated minutes, once without the gate and once with it,
and the served items are summarised into the figures the report shows.

Simulated time: a persona watches the top item of each slate for the fraction of its length its watch behaviour
gives, then takes a second to swipe. The random draws are keyed by seed, persona and step, so the same settings give
the same figures, and the two conditions see the same draws until the gate changes what is served.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.feed.audit.catalogue import Label
from bastion.feed.audit.gates import Gate, Viewer
from bastion.feed.audit.personas import Persona
from bastion.feed.audit.recommender import Candidate, Recommender, RecommendRequest, Watched

SWIPE_SECONDS = 1.0
#: Slates in a row with nothing eligible after which a persona's session ends (a recommender ignoring ``exclude``).
MAX_EMPTY_SLATES = 50
WITHOUT_GATE, WITH_GATE = "without_gate", "with_gate"


@dataclass(frozen=True)
class AuditSettings:
    """Everything that decides a run's figures; stored with it, so a later run can repeat or be compared."""

    scenario: str
    personas: tuple[Persona, ...]
    minutes: float
    seed: int
    catalogue_size: int = 1500
    slate: int = 8
    bucket_minutes: float = 5.0
    recommender: str = "reference"  # or the platform recommender's URL
    gate: str = "off"  # "off", "loopback" (offline) or the URL of the Bastion whose gate is used
    compared_to: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "personas": [p.to_json() for p in self.personas],
                "minutes": self.minutes, "seed": self.seed, "catalogue_size": self.catalogue_size,
                "slate": self.slate, "bucket_minutes": self.bucket_minutes, "recommender": self.recommender,
                "gate": self.gate, "compared_to": self.compared_to}


@dataclass
class Served:
    minute: float
    content_id: str
    topic: str
    label: Label
    watched_seconds: float


@dataclass
class Session:
    served: list[Served] = field(default_factory=list)
    withheld: Counter[str] = field(default_factory=Counter)  # reason code -> items the gate withheld
    withheld_labels: Counter[str] = field(default_factory=Counter)


def simulate(persona: Persona, recommender: Recommender, gate: Gate | None, *, minutes: float, seed: int) -> Session:
    """One persona's session. With ``gate``, every slate goes through it and the persona watches the first eligible
    item; withheld items are added to ``exclude`` so the recommender offers something else."""
    session = Session()
    history: list[Watched] = []
    exclude: list[str] = []
    t, step, empty = 0.0, 0, 0
    viewer = Viewer(f"audit-{persona.id}", persona.age)
    while t < minutes * 60:
        slate: Sequence[Candidate] = recommender.recommend(RecommendRequest(persona.id, t / 60, history, exclude))
        if not slate:
            break
        if gate is not None:
            withheld = gate.filter(viewer, [c.content_id for c in slate])
            for c in slate:
                if c.content_id in withheld:
                    exclude.append(c.content_id)
                    session.withheld.update(withheld[c.content_id])
                    session.withheld_labels[c.label.value] += 1
            slate = [c for c in slate if c.content_id not in withheld]
            if not slate:
                empty += 1
                if empty >= MAX_EMPTY_SLATES:
                    break
                continue
        empty = 0
        item = slate[0]
        draw = random.Random(f"watch:{seed}:{persona.id}:{step}")
        fraction = persona.fraction(item.topic, item.appeal, item.hook, draw)
        seconds = max(1.5, fraction * item.seconds)
        session.served.append(Served(round(t / 60, 3), item.content_id, item.topic, item.label, round(seconds, 2)))
        history.append(Watched(item.content_id, item.topic, seconds, fraction))
        exclude.append(item.content_id)
        t += seconds + SWIPE_SECONDS
        step += 1
    return session


def summarise(session: Session, minutes: float, bucket_minutes: float) -> dict[str, Any]:
    """The figures of one persona under one condition."""
    served = session.served

    def first(labels: set[Label]) -> float | None:
        return next((s.minute for s in served if s.label in labels), None)

    def shares(items: list[Served]) -> dict[str, Any]:
        n = len(items)
        harmful = sum(1 for s in items if s.label is Label.HARMFUL)
        borderline = sum(1 for s in items if s.label is Label.BORDERLINE)
        return {"items": n, "harmful": harmful, "borderline": borderline,
                "unlabelled": sum(1 for s in items if s.label is Label.UNLABELLED),
                "harmful_share": round(harmful / n, 4) if n else 0.0,
                "borderline_share": round(borderline / n, 4) if n else 0.0}

    buckets = []
    for b in range(max(1, math.ceil(minutes / bucket_minutes))):
        start, end = b * bucket_minutes, min(minutes, (b + 1) * bucket_minutes)
        buckets.append({"start": start, "end": end, **shares([s for s in served if start <= s.minute < end])})
    return {
        **shares(served),
        "first_harmful_minute": first({Label.HARMFUL}),
        "first_borderline_minute": first({Label.BORDERLINE}),
        "watched_minutes": round(sum(s.watched_seconds for s in served) / 60, 2),
        "buckets": buckets,
        "withheld": {"items": sum(session.withheld_labels.values()), "reasons": dict(sorted(session.withheld.items())),
                     "labels": dict(sorted(session.withheld_labels.items()))},
        "served": [[s.minute, s.content_id, s.topic, s.label.value, s.watched_seconds] for s in served],
    }


def run(settings: AuditSettings, recommender: Recommender, gate: Gate | None,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every persona under each condition (with the gate only when one is given). The results as stored."""
    personas = []
    for persona in settings.personas:
        conditions = {WITHOUT_GATE: None} if gate is None else {WITHOUT_GATE: None, WITH_GATE: gate}
        figures = {}
        for name, g in conditions.items():
            if progress is not None:
                progress(f"{persona.id} {name.replace('_', ' ')}")
            session = simulate(persona, recommender, g, minutes=settings.minutes, seed=settings.seed)
            figures[name] = summarise(session, settings.minutes, settings.bucket_minutes)
        personas.append({**persona.to_json(), "conditions": figures})
    return {"personas": personas}


#: The figures ``compare`` sets side by side.
COMPARED = ("first_harmful_minute", "harmful_share", "borderline_share", "items")


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Row by row, the figures of two runs' results for the personas and conditions both have."""
    earlier = {p["id"]: p for p in before.get("personas", [])}
    rows = []
    for persona in after.get("personas", []):
        old = earlier.get(persona["id"])
        if old is None:
            continue
        for condition, figures in persona["conditions"].items():
            was = old["conditions"].get(condition)
            if was is None:
                continue
            rows += [{"persona": persona["id"], "condition": condition, "figure": name, "before": was.get(name),
                      "after": figures.get(name)} for name in COMPARED]
    return rows
