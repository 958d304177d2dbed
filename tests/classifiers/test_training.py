"""A model trained on moderators' decisions made through the real services, stored, served and shown to analysts."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from bastion.classifiers import services
from bastion.classifiers.decisions import DecisionsClassifier
from bastion.classifiers.features import HashedNgrams
from bastion.classifiers.interfaces import Content, LabelledText
from bastion.classifiers.logistic import best_threshold, held_out, metrics
from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.moderation import decisions, intake, notices, queries
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import Action, Category, ContentType
from bastion.review.services import claim_next, get_case
from bastion.web.app import create_app

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
PLATFORM = Principal("token", 1, "platform-test", Role.PLATFORM)
MONA = Principal("token", 2, "mona", Role.MODERATOR)
GROUPS = ["migrants", "jews", "muslims", "roma", "refugees", "gays", "christians", "foreigners"]
THINGS = ["sunset", "cake", "puppy", "garden", "concert", "hike", "bicycle", "painting"]


def _texts(n: int) -> list[tuple[str, bool]]:
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append((f"the {GROUPS[i % 8]} are vermin, drive them out of our country {i}", True))
        else:
            out.append((f"what a lovely {THINGS[i % 8]} we had this weekend with friends {i}", False))
    return out


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=db, clock=FrozenClock(NOW))) as c:
        yield c


def _mod(client: TestClient) -> Moderation:
    mod = client.app.state.moderation  # type: ignore[attr-defined]
    assert isinstance(mod, Moderation)
    return mod


def _decide_all(mod: Moderation, examples: list[tuple[str, bool]], category: Category,
                prefix: str = "post") -> None:
    """Upload, report, claim and decide each text, as the platform and a moderator would."""
    for i, (text, violation) in enumerate(examples):
        content_id = f"{prefix}-{i}"
        sub = intake.Submission(content_id, "acct-1", 30, "FR", ContentType.TEXT, text=text)
        assert intake.submit(mod, sub, None, actor=PLATFORM).verdict.value == "allow"
        case_id = notices.record_notice(mod, content_id, category=category, explanation="reported",
                                           trusted_flagger=False, notifier="user-1", actor=PLATFORM)
        with mod.db.read() as session:
            queue = get_case(session, case_id).queue  # wherever the policy routed the report
        case = claim_next(mod.db, queues=[queue], reviewer=MONA.actor, clock=mod.clock)
        assert case is not None and case.id == case_id
        decisions.decide(mod, case_id, decisions.ReviewDecision(
            violation, [Action.REMOVE] if violation else []), reviewer=MONA)


def test_decisions_become_labelled_texts(client: TestClient, db: Database) -> None:
    mod = _mod(client)
    _decide_all(mod, _texts(4), Category.HATE_SPEECH)
    with db.read() as session:
        found = queries.decided_texts(session)
    assert [(e.key, e.category, e.violation) for e in found] == [
        ("post-0", "hate_speech", True), ("post-1", "hate_speech", False),
        ("post-2", "hate_speech", True), ("post-3", "hate_speech", False)]
    assert found[0].text == _texts(4)[0][0]


def test_train_measures_on_held_out_decisions_stores_a_version_and_scores(client: TestClient, db: Database) -> None:
    mod = _mod(client)
    examples = _texts(40)
    _decide_all(mod, examples, Category.HATE_SPEECH)
    with db.read() as session:
        decided = queries.decided_texts(session)
    row = services.train(db, decided, category="hate_speech", features=HashedNgrams(), clock=mod.clock,
                         actor="analyst-1")
    assert (row.version, row.decisions, row.feature_kind, row.trained_at) == (1, 40, "ngrams", NOW)
    # The stored figures are those of the held-out decisions, recomputed here from the stored model.
    test = [e for e in decided if held_out(e.key, seed=services.SEED, fraction=services.HELD_OUT_FRACTION)]
    model = DecisionsClassifier("decisions:hate_speech", db, "hate_speech")
    scores = [model.classify(Content(e.text))["decisions:hate_speech"] for e in test]
    expected = metrics([e.violation for e in test], scores, 0.5)  # the served score reads the threshold as 0.5
    assert row.metrics["support"] == expected.support == sum(e.violation for e in test) > 0
    assert (row.metrics["precision"], row.metrics["recall"]) == pytest.approx((expected.precision, expected.recall))
    assert row.metrics["held_out"] == len(test) and row.metrics["trained_on"] == 40 - len(test)
    assert expected.precision == 1.0 and expected.recall == 1.0  # an easy, separable set
    unseen = model.classify(Content("the refugees are vermin, drive them out"))["decisions:hate_speech"]
    benign = model.classify(Content("a lovely concert with friends"))["decisions:hate_speech"]
    assert unseen > 0.5 > benign
    again = services.train(db, decided, category="hate_speech", features=HashedNgrams(), clock=mod.clock,
                           actor="analyst-1")
    assert again.version == 2 and again.metrics == row.metrics  # the same decisions give the same model
    with db.read() as session:
        assert [(m.category, m.version) for m in services.latest_models(session)] == [("hate_speech", 2)]


def test_the_threshold_is_chosen_on_held_out_decisions_stored_and_served_as_one_half(db: Database) -> None:
    # Some clean posts were decided as violations (moderators disagree): no threshold separates the held-out set.
    examples = [LabelledText(f"c-{i}", text, "hate_speech", bad or i % 10 == 3)
                for i, (text, bad) in enumerate(_texts(120))]
    row = services.train(db, examples, category="hate_speech", features=HashedNgrams(), clock=FrozenClock(NOW),
                         actor="a")
    test = [e for e in examples if held_out(e.key, seed=services.SEED, fraction=services.HELD_OUT_FRACTION)]
    labels = [e.violation for e in test]
    features, weights = services.weights_of(row)
    raw = weights.scores(features.rows([e.text for e in test]))
    assert row.threshold == best_threshold(labels, raw) and row.threshold != 0.5
    at_threshold = metrics(labels, raw, row.threshold)
    assert row.metrics["threshold"] == row.threshold
    assert (row.metrics["precision"], row.metrics["recall"], row.metrics["f1"]) == pytest.approx(
        (at_threshold.precision, at_threshold.recall, at_threshold.f1))
    assert row.metrics["f1"] >= max(metrics(labels, raw, float(t)).f1 for t in raw) - 1e-9
    assert row.metrics["f1"] >= metrics(labels, raw, 0.5).f1  # never worse than the fixed threshold it replaces
    # The policy sees the score recentred on the threshold: >= 0.5 exactly where the model says "violation".
    served = DecisionsClassifier("d", db, "hate_speech")
    policy_scores = [served.classify(Content(e.text))["d"] for e in test]
    assert [s >= 0.5 for s in policy_scores] == [float(r) >= row.threshold for r in raw]
    again = services.train(db, examples, category="hate_speech", features=HashedNgrams(), clock=FrozenClock(NOW),
                           actor="a")
    assert (again.threshold, again.metrics) == (row.threshold, row.metrics)  # deterministic


def test_too_few_decisions_are_refused_and_nothing_is_stored(client: TestClient, db: Database) -> None:
    mod = _mod(client)
    _decide_all(mod, _texts(6), Category.HATE_SPEECH)
    with db.read() as session:
        decided = queries.decided_texts(session)
    with pytest.raises(services.NotEnoughDecisions, match=r"6 decisions with text .* needs at least 20"):
        services.train(db, decided, category="hate_speech", features=HashedNgrams(), clock=mod.clock, actor="a")
    with db.read() as session:
        assert services.latest_models(session) == []
    assert DecisionsClassifier("d", db, "hate_speech").classify(Content("anything")) == {}  # untrained: no score


def test_analysts_see_classifiers_and_held_out_figures(client: TestClient, db: Database,
                                                       auth_header: Callable[[Role], dict[str, str]]) -> None:
    mod = _mod(client)
    _decide_all(mod, _texts(24), Category.HATE_SPEECH)
    with db.read() as session:
        decided = queries.decided_texts(session)
    services.train(db, decided, category="hate_speech", features=HashedNgrams(), clock=mod.clock, actor="a")
    services.add_corpus(db, ["a known text", "another"], category="terrorist_content", source="t", actor="a",
                        clock=mod.clock)
    r = client.get("/v1/classifiers", headers=auth_header(Role.ANALYST))
    assert r.status_code == 200, r.text
    body = r.json()
    (model,) = body["models"]
    assert (model["category"], model["version"], model["decisions"]) == ("hate_speech", 1, 24)
    assert set(model["held_out"]) >= {"precision", "recall", "f1", "support", "threshold"}
    assert body["corpus"] == {"terrorist_content": 2} and body["classifiers"] == []
    assert client.get("/v1/classifiers", headers=auth_header(Role.ADMIN)).status_code == 200
    assert client.get("/v1/classifiers", headers=auth_header(Role.MODERATOR)).status_code == 403
    denied = client.get("/v1/classifiers")
    assert denied.status_code == 401 and denied.headers["content-type"] == "application/problem+json"


def _bastion(db: Database, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BASTION_DATABASE_URL": db.url, "CI": "true"}
    return subprocess.run([sys.executable, "-m", "bastion", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_cli_trains_lists_metrics_and_refuses_clearly(client: TestClient, db: Database) -> None:
    refused = _bastion(db, "classifier", "train", "--features", "ngrams")
    assert refused.returncode == 1 and "no decided case has text yet" in refused.stderr
    mod = _mod(client)
    _decide_all(mod, _texts(24), Category.HATE_SPEECH)
    _decide_all(mod, _texts(6), Category.TERRORIST_CONTENT, prefix="tc")
    few = _bastion(db, "classifier", "train", "--features", "ngrams", "--category", "terrorist_content")
    assert few.returncode == 1 and "terrorist_content: 6 decisions" in few.stderr
    trained = _bastion(db, "classifier", "train", "--features", "ngrams", "--category", "hate_speech")
    assert trained.returncode == 0, trained.stderr
    assert "hate_speech v1: 24 decisions, held-out precision" in trained.stderr
    shown = _bastion(db, "classifier", "metrics", "--json")
    assert shown.returncode == 0, shown.stderr
    (model,) = json.loads(shown.stdout)
    assert (model["category"], model["version"], model["feature_kind"]) == ("hate_speech", 1, "ngrams")
    listed = _bastion(db, "classifier", "list")
    assert listed.returncode == 0 and "no classifiers configured" in listed.stderr
