"""The audit's figures are reproduced from a fixed seed, and the reference recommender shows the shape of the
findings it stands in for: personas who linger on a topic are pulled into its harmful items within minutes."""

from __future__ import annotations

import json

from bastion.feed.audit import catalogue, runner
from bastion.feed.audit.catalogue import Label
from bastion.feed.audit.personas import AMNESTY, NEWSGUARD, SCENARIOS
from bastion.feed.audit.recommender import RecommendRequest, ReferenceRecommender

SEED = 9


def _run(seed: int = SEED, minutes: float = 10, size: int = 1500) -> dict[str, object]:
    settings = runner.AuditSettings("all", SCENARIOS["all"], minutes, seed, size, bucket_minutes=2)
    return runner.run(settings, ReferenceRecommender(catalogue.build(seed, size), seed), None)


def _figures(results: dict[str, object]) -> dict[str, tuple[object, ...]]:
    return {p["id"]: (p["conditions"]["without_gate"]["items"], p["conditions"]["without_gate"]["first_harmful_minute"],
                      p["conditions"]["without_gate"]["harmful"], p["conditions"]["without_gate"]["borderline"])
            for p in results["personas"]}  # type: ignore[attr-defined]


def test_the_figures_are_reproduced_from_a_fixed_seed() -> None:
    first = _run()
    assert json.dumps(first, sort_keys=True) == json.dumps(_run(), sort_keys=True)
    # persona: (items served, first harmful minute, harmful items, borderline items) in 10 simulated minutes
    assert _figures(first) == EXPECTED
    assert json.dumps(_run(seed=SEED + 1), sort_keys=True) != json.dumps(first, sort_keys=True)


EXPECTED: dict[str, tuple[object, ...]] = {
    "adult-war-watcher": (29, 0.736, 1, 4), "adult-news-curious": (38, 1.07, 2, 3), "adult-control": (28, None, 0, 1),
    "teen-13-lingers": (20, 1.349, 9, 4), "teen-15-fitness": (24, 1.361, 12, 3), "teen-14-control": (29, 8.775, 2, 1),
}


def test_personas_who_linger_are_pulled_in_and_the_controls_are_not() -> None:
    results = {p["id"]: p["conditions"]["without_gate"] for p in _run(minutes=10)["personas"]}  # type: ignore[index]
    for lingering in ("teen-13-lingers", "teen-15-fitness"):  # Amnesty: within minutes
        assert results[lingering]["first_harmful_minute"] is not None
        assert results[lingering]["first_harmful_minute"] < 5
        assert results[lingering]["harmful_share"] > 0.1
    for control in ("adult-control", "teen-14-control"):
        assert results[control]["harmful_share"] < results["teen-13-lingers"]["harmful_share"] / 3


def test_the_catalogue_and_the_recommender_are_deterministic_and_label_blind() -> None:
    a, b = catalogue.build(4, 300), catalogue.build(4, 300)
    assert a == b and a.counts()["harmful"] > 0 and a.counts()["borderline"] > 0
    rec = ReferenceRecommender(a, 4)
    request = RecommendRequest("p", 0.0, [], [])
    assert rec.recommend(request) == rec.recommend(request)
    # the recommender never reads a label: relabelling every item changes nothing it offers
    relabelled = catalogue.Catalogue(tuple(catalogue.Item(i.content_id, i.topic, Label.BENIGN, i.seconds, i.appeal,
                                                          i.hook) for i in a.items))
    offered = [c.content_id for c in ReferenceRecommender(relabelled, 4).recommend(request)]
    assert offered == [c.content_id for c in rec.recommend(request)]


def test_a_withheld_or_served_item_is_never_offered_again() -> None:
    cat = catalogue.build(5, 200)
    session = runner.simulate(NEWSGUARD[0], ReferenceRecommender(cat, 5), None, minutes=5, seed=5)
    ids = [s.content_id for s in session.served]
    assert len(ids) == len(set(ids)) > 5


def test_buckets_add_up_and_compare_lines_up_two_runs() -> None:
    results = _run(minutes=6, size=400)
    for p in results["personas"]:  # type: ignore[attr-defined]
        figures = p["conditions"]["without_gate"]
        assert sum(b["items"] for b in figures["buckets"]) == figures["items"]
        assert len(figures["buckets"]) == 3
    rows = runner.compare(results, _run(seed=SEED + 1, minutes=6, size=400))
    assert {r["persona"] for r in rows} == {p.id for p in NEWSGUARD + AMNESTY}
    assert {r["figure"] for r in rows} == set(runner.COMPARED)
