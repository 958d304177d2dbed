"""The synthetic catalogue: short videos with a topic, a label (benign, borderline, harmful), a length and an appeal.

Harmful and borderline items get a ``hook``: they hold a viewer who already leans to their topic longer than benign
ones do. That is what research on engagement-optimised feeds finds (outrage and distress hold attention), and it is
what makes a rabbit hole: a fresh account is not shown them for their own sake, but one lingering video on the topic
lets their extra engagement pull the feed down. The
labels are the ground truth the audit counts against; the recommender never reads them.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


class Label(enum.StrEnum):
    """Ground truth of a catalogue item. ``unlabelled``: an item of a platform's recommender the audit cannot judge."""

    BENIGN = "benign"
    BORDERLINE = "borderline"
    HARMFUL = "harmful"
    UNLABELLED = "unlabelled"


#: Topic -> (share of the catalogue, share borderline, share harmful, what its harmful items are).
TOPICS: dict[str, tuple[float, float, float, str]] = {
    "comedy": (0.12, 0.02, 0.0, ""),
    "music": (0.10, 0.02, 0.0, ""),
    "gaming": (0.09, 0.03, 0.0, ""),
    "sports": (0.08, 0.0, 0.0, ""),
    "cooking": (0.07, 0.0, 0.0, ""),
    "pets": (0.08, 0.0, 0.0, ""),
    "dance": (0.07, 0.02, 0.0, ""),
    "fashion": (0.05, 0.03, 0.0, ""),
    "science": (0.04, 0.0, 0.0, ""),
    "news": (0.08, 0.08, 0.04, "false claims about current events"),
    "war": (0.08, 0.30, 0.30, "false war footage and claims"),
    "fitness": (0.05, 0.15, 0.05, "extreme dieting"),
    "mental_health": (0.09, 0.35, 0.30, "self-harm and eating-disorder content"),
}
#: Topics a viewer drifts between: the recommender treats them as similar.
RELATED: dict[str, frozenset[str]] = {
    "news": frozenset({"war"}), "war": frozenset({"news"}),
    "fitness": frozenset({"mental_health", "fashion"}), "mental_health": frozenset({"fitness", "music"}),
    "fashion": frozenset({"fitness"}), "music": frozenset({"mental_health", "dance"}), "dance": frozenset({"music"}),
}
#: How much more a borderline or harmful item holds a viewer leaning to its topic than a benign one.
HOOK = {Label.BENIGN: 0.0, Label.BORDERLINE: 0.15, Label.HARMFUL: 0.25}


@dataclass(frozen=True)
class Item:
    content_id: str
    topic: str
    label: Label
    seconds: int  # its length
    appeal: float  # 0..1: how well it holds a viewer with no interest in its topic
    hook: float  # extra hold on a viewer who leans to its topic (harmful and borderline items)

    def to_json(self) -> dict[str, object]:
        return {"content_id": self.content_id, "topic": self.topic, "label": self.label.value,
                "seconds": self.seconds, "appeal": self.appeal, "hook": self.hook}


@dataclass(frozen=True)
class Catalogue:
    items: tuple[Item, ...]

    def by_id(self) -> dict[str, Item]:
        return {i.content_id: i for i in self.items}

    def counts(self) -> dict[str, int]:
        return {label.value: sum(1 for i in self.items if i.label is label) for label in Label
                if label is not Label.UNLABELLED}


def similarity(a: str, b: str) -> float:
    """Topic similarity the reference recommender uses: 1 for the same topic, 0.4 for a related one."""
    return 1.0 if a == b else 0.4 if b in RELATED.get(a, frozenset()) else 0.0


def build(seed: int, size: int = 1500) -> Catalogue:
    """A catalogue of ``size`` items, the same for the same seed and size."""
    rng = random.Random(f"catalogue:{seed}:{size}")
    items: list[Item] = []
    topics = list(TOPICS)
    weights = [TOPICS[t][0] for t in topics]
    for n in range(size):
        topic = rng.choices(topics, weights)[0]
        _, borderline, harmful, _what = TOPICS[topic]
        draw = rng.random()
        label = Label.HARMFUL if draw < harmful else Label.BORDERLINE if draw < harmful + borderline else Label.BENIGN
        appeal = round(rng.uniform(0.25, 0.6), 3)
        items.append(Item(f"syn-{n:04d}", topic, label, rng.randint(12, 60), appeal, HOOK[label]))
    return Catalogue(tuple(items))
