"""Commands for classifiers: the reference corpus, models trained on decisions, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import cli_actor, err, fail, guarded, open_db, out, progress_bar
from bastion.core.config import Settings

classifier_app = typer.Typer(help="Classifiers: reference corpus, models trained on decisions, metrics.",
                             no_args_is_help=True)
corpus_app = typer.Typer(help="Reference texts the similarity classifiers compare uploads with.", no_args_is_help=True)
app.add_typer(classifier_app, name="classifier")
classifier_app.add_typer(corpus_app, name="corpus")


@corpus_app.command("add")
def classifier_corpus_add(file: Annotated[Path, typer.Argument(help="UTF-8 text; texts separated by blank lines")],
                          category: Annotated[str, typer.Option(help="e.g. terrorist_content")],
                          source: Annotated[str, typer.Option(help="where the texts come from")] = "") -> None:
    """Add known texts of a category (one transaction; a text already there is skipped)."""
    from bastion.classifiers import services as classifiers
    from bastion.core.clock import SystemClock

    try:
        raw = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}")
    texts = [t for t in (" ".join(block.split()) for block in raw.split("\n\n")) if t]
    if not texts:
        fail(f"{file} holds no text")
    db = open_db()
    added, skipped = guarded(lambda: classifiers.add_corpus(db, texts, category=category, source=source or file.name,
                                                            actor=cli_actor().actor, clock=SystemClock()))
    err.print(f"{added} texts added to {category}, {skipped} already there")


@corpus_app.command("list")
def classifier_corpus_list() -> None:
    """How many reference texts each category holds."""
    from bastion.classifiers import services as classifiers

    db = open_db()
    table = Table("category", "texts")
    with db.read() as session:
        for category, n in sorted(classifiers.corpus_counts(session).items()):
            table.add_row(category, str(n))
    out.print(table)


@classifier_app.command("train")
def classifier_train(category: Annotated[list[str] | None, typer.Option(help="only these (default: every "
                                                                               "decided category)")] = None,
                     features: Annotated[str, typer.Option(help="auto, ngrams or minilm")] = "auto",
                     min_decisions: Annotated[int, typer.Option(help="refuse below this many")] = 20) -> None:
    """Train a model per category on moderators' decisions; store it as the next version with held-out metrics."""
    from bastion.classifiers import features as featurisers
    from bastion.classifiers import services as classifiers
    from bastion.core.clock import SystemClock
    from bastion.moderation.queries import decided_texts

    chosen = guarded(lambda: featurisers.best_available() if features == "auto" else featurisers.featuriser(features))
    if chosen.kind == "minilm":
        from bastion.classifiers.embeddings import require_ml

        guarded(lambda: require_ml("--features minilm"))
    db = open_db()
    with db.read() as session:
        examples = decided_texts(session)
    categories = category or sorted({e.category for e in examples})
    if not categories:
        fail("no decided case has text yet: decide cases in the review queues, then train")
    steps = 300
    for name in categories:
        with progress_bar(f"training {name} ({chosen.kind})", steps) as advance:
            try:
                row = classifiers.train(db, examples, category=name, features=chosen, clock=SystemClock(),
                                        actor=cli_actor().actor, min_decisions=min_decisions, steps=steps,
                                        progress=advance)
            except ValueError as exc:
                fail(str(exc))
        m = row.metrics
        err.print(f"{name} v{row.version}: {row.decisions} decisions, held-out precision {m['precision']:.2f} "
                  f"recall {m['recall']:.2f} f1 {m['f1']:.2f} (support {int(m['support'])}, threshold "
                  f"{row.threshold:.2f})")


@classifier_app.command("list")
def classifier_list() -> None:
    """The classifiers this deployment runs (BASTION_CLASSIFIERS, validated) and the scores they give."""
    from bastion.classifiers import registry
    from bastion.classifiers.interfaces import ClassifierContext

    settings = Settings.from_env()
    db = open_db()
    found = guarded(lambda: registry.load(settings.classifiers_path, ClassifierContext(db, settings.classifier_token)))
    if not found:
        err.print("no classifiers configured (set BASTION_CLASSIFIERS to a classifiers file)")
    table = Table("name", "kind", "scores", "reads")
    for c in found:
        table.add_row(c.name, c.kind, ", ".join(c.score_names()), ", ".join(sorted(a.value for a in c.accepts())))
    out.print(table)


@classifier_app.command("metrics")
def classifier_metrics(as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False) -> None:
    """Each category's model in force: held-out precision, recall, F1 and support."""
    from bastion.classifiers import services as classifiers

    db = open_db()
    with db.read() as session:
        models = classifiers.latest_models(session)
    if as_json:
        print(json.dumps([classifiers.model_json(m) for m in models], indent=2))
        return
    table = Table("category", "version", "features", "decisions", "trained", "precision", "recall", "f1", "support")
    for m in models:
        held = m.metrics
        table.add_row(m.category, str(m.version), m.feature_kind, str(m.decisions), f"{m.trained_at:%Y-%m-%d %H:%M}",
                      f"{held['precision']:.2f}", f"{held['recall']:.2f}", f"{held['f1']:.2f}",
                      str(int(held["support"])))
    out.print(table)
    if not models:
        err.print("no model trained yet: bastion classifier train")


