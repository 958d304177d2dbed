"""The classifiers file: validated as a whole at start-up, with one clear message per mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bastion.classifiers import embeddings, registry
from bastion.classifiers.decisions import DecisionsClassifier
from bastion.classifiers.http import HttpClassifier
from bastion.classifiers.interfaces import ClassifierContext, ClassifierError, MissingExtra
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app


def _load(tmp_path: Path, db: Database, text: str) -> tuple[object, ...]:
    path = tmp_path / "classifiers.toml"
    path.write_text(text)
    return registry.load(path, ClassifierContext(db))


def test_no_file_means_no_classifiers(db: Database) -> None:
    assert registry.load(None, ClassifierContext(db)) == ()


def test_a_file_builds_each_kind(tmp_path: Path, db: Database) -> None:
    found = _load(tmp_path, db, """
[[classifiers]]
kind = "decisions"
category = "hate_speech"

[[classifiers]]
kind = "decisions"
category = "terrorist_content"
name = "terror_text"

[[classifiers]]
kind = "http"
name = "vision"
url = "http://127.0.0.1:9000/score"
scores = ["violent_extremism"]
""")
    assert [type(c) for c in found] == [DecisionsClassifier, DecisionsClassifier, HttpClassifier]
    assert [list(c.score_names()) for c in found] == [  # type: ignore[attr-defined]
        ["decisions:hate_speech"], ["terror_text"], ["violent_extremism"]]


@pytest.mark.parametrize(("text", "message"), [
    ("[[classifiers]]\nkind = 'magic'\nname = 'x'", "kind 'magic' is not one of http, similarity, decisions"),
    ("[[classifiers]]\nkind = 'decisions'\ncategory = 'hate_speech'\ncolour = 1", "unknown field 'colour'"),
    ("[[classifiers]]\nkind = 'decisions'\ncategory = 'Hate Speech'", "is not a category"),
    ("[[classifiers]]\nkind = 'decisions'\ncategory = 'a'\n[[classifiers]]\nkind = 'decisions'\ncategory = 'a'",
     "the name 'decisions:a' is used twice"),
    ("[[classifiers]]\nkind = 'decisions'\ncategory = 'a'\nname = 's'\n"
     "[[classifiers]]\nkind = 'http'\nname = 'h'\nurl = 'http://x'\nscores = ['s']", "score 's' is also given by 's'"),
    ("classifiers = 3", "must be a list"),
    ("[classifier]\nkind = 'http'", "unknown key 'classifier'"),
    ("[[classifiers]\nkind=", "not valid TOML"),
])
def test_mistakes_are_refused_with_the_reason(tmp_path: Path, db: Database, text: str, message: str) -> None:
    with pytest.raises(ClassifierError, match=message):
        _load(tmp_path, db, text)


def test_a_missing_file_is_refused(tmp_path: Path, db: Database) -> None:
    with pytest.raises(ClassifierError, match="cannot read the classifiers file"):
        registry.load(tmp_path / "nope.toml", ClassifierContext(db))


def test_the_app_refuses_to_start_with_a_broken_file(tmp_path: Path, settings: Settings, db: Database) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[[classifiers]]\nkind = 'http'\nname = 'h'\nurl = 'gopher://x'\nscores = ['s']")
    with pytest.raises(ClassifierError, match="url: an http"):
        create_app(Settings(**{**settings.__dict__, "classifiers_path": path}), db=db)


def test_similarity_without_the_ml_extra_says_how_to_install_it(
        tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if it were not installed
    assert "sentence_transformers" in embeddings.ml_missing()
    # Whatever else of the extra is missing on this machine (nothing in CI's extended run, all of it on a newcomer's),
    # the message names the blocked module and says how to install the extra.
    with pytest.raises(MissingExtra, match=r"classifier 'terror_text' \(similarity\) needs the ml extra "
                                           r"\([^)]*sentence_transformers[^)]* not installed\): "
                                           r"pip install '\.\[ml\]'"):
        _load(tmp_path, db, "[[classifiers]]\nkind = 'similarity'\nname = 'terror_text'\n"
                            "category = 'terrorist_content'")


def test_the_cli_says_it_too(tmp_path: Path, db: Database) -> None:
    """A real process in which the extra cannot be imported: ``bastion classifier train --features minilm``."""
    code = ("import sys; sys.modules['sentence_transformers'] = None; sys.argv = ['bastion', 'classifier', 'train', "
            "'--features', 'minilm']; from bastion.cli import app; app()")
    r = subprocess.run([sys.executable, "-c", code], env={"BASTION_DATABASE_URL": db.url, "PATH": "/usr/bin"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "needs the ml extra" in r.stderr and "pip install '.[ml]'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
