"""Sock-puppet personas: a new account (no follows, no searches) with an age, a few interests and, optionally, a
watch behaviour such as "watches to the end anything about the war". Two scenarios are bundled, after NewsGuard's
2022 test of war content served to fresh accounts and Amnesty International's "Driven into the Darkness" (2023).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


def band(age: int) -> str:
    """The age band the report groups by (the minors domain's bands, spelled out)."""
    return "13-15" if age < 16 else "16-17" if age < 18 else "18-24" if age < 25 else "25+"


@dataclass(frozen=True)
class Persona:
    """What a persona does with an item: ``watch`` maps a topic to the fraction of it the persona watches (1.0: to the
    end) and overrides everything else; an interest is watched most of the way; anything else by its appeal."""

    id: str
    description: str
    age: int
    interests: tuple[str, ...] = ()
    watch: dict[str, float] = field(default_factory=dict)

    @property
    def band(self) -> str:
        return band(self.age)

    def fraction(self, topic: str, appeal: float, hook: float, rng: random.Random) -> float:
        """How much of an item of ``topic``, ``appeal`` and ``hook`` the persona watches (0..1)."""
        if topic in self.watch:
            base = self.watch[topic]
        elif topic in self.interests:
            base = 0.55 + 0.3 * appeal + hook
        else:
            base = 0.05 + 0.45 * appeal
        return max(0.05, min(1.0, base + rng.uniform(-0.1, 0.1)))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "age": self.age, "band": self.band,
                "interests": list(self.interests), "watch": dict(self.watch)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Persona:
        return cls(id=str(data["id"]), description=str(data.get("description", "")), age=int(data["age"]),
                   interests=tuple(str(t) for t in data.get("interests", ())),
                   watch={str(k): float(v) for k, v in dict(data.get("watch", {})).items()})


#: NewsGuard (2022): accounts created fresh, no search, no follows, were shown false war content within 40 minutes.
NEWSGUARD = (
    Persona("adult-war-watcher", "adult, new account; watches to the end anything about the war", 24,
            interests=("comedy", "sports"), watch={"war": 1.0}),
    Persona("adult-news-curious", "adult, new account; interested in news and science", 35,
            interests=("news", "science")),
    Persona("adult-control", "adult, new account; pets and cooking, no watch behaviour", 30,
            interests=("pets", "cooking")),
)
#: Amnesty International, "Driven into the Darkness" (2023): teen accounts that lingered on mental-health videos
#: were shown them within minutes, then content romanticising depression and self-harm.
AMNESTY = (
    Persona("teen-13-lingers", "13, new account; rewatches mental-health videos", 13,
            interests=("dance", "music"), watch={"mental_health": 1.0}),
    Persona("teen-15-fitness", "15, new account; into fitness and fashion, lingers on mental-health videos", 15,
            interests=("fitness", "fashion"), watch={"mental_health": 0.9}),
    Persona("teen-14-control", "14, new account; gaming and pets, no watch behaviour", 14,
            interests=("gaming", "pets")),
)
SCENARIOS: dict[str, tuple[Persona, ...]] = {"newsguard": NEWSGUARD, "amnesty": AMNESTY,
                                             "all": NEWSGUARD + AMNESTY}
