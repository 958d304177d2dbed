"""The ``bastion`` command. Errors are one line on stderr with a non-zero exit; long work shows a progress bar."""

from __future__ import annotations

import getpass
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bastion.core.audit import services as audit
from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role, parse_role
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.hashing.services import hash_path, signal_json
from bastion.matching import services as banks
from bastion.matching.interfaces import BankError
from bastion.matching.matcher import Matcher
from bastion.matching.scan import ScanSummary, scan_files, walk
from bastion.reporting import services as reports

app = typer.Typer(help="Bastion: hash matching, moderation, removal orders and child-safety reporting.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
bank_app = typer.Typer(help="Banks of known content.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
for sub, name in ((token_app, "token"), (user_app, "user"), (bank_app, "bank"), (audit_app, "audit"),
                  (db_app, "db")):
    app.add_typer(sub, name=name)

err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console()
T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)  # "[ml]" is not markup
    raise typer.Exit(code)


def cli_actor() -> auth.Principal:
    """Whoever runs the CLI on the server holds the database already: they act as an admin, named in the audit."""
    return auth.Principal("cli", 0, os.environ.get("BASTION_ACTOR") or getpass.getuser(), Role.ADMIN)


def open_db(url: str | None = None) -> Database:
    """The platform's database, or another (the hub's) when ``url`` is given; migrated to the current schema."""
    url = url or Settings.from_env().database_url
    try:
        migrate(url)
    except Exception as exc:
        fail(f"cannot open the database {_redact(url)}: {type(exc).__name__}: {exc}")
    return Database(url)


def _redact(url: str) -> str:
    """Never print a password from a database URL."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (BankError, ValueError) as exc:
        fail(str(exc))


@contextmanager
def progress_bar(description: str, total: float | None, unit: str = "") -> Iterator[Callable[[float], None]]:
    columns = [TextColumn("[bold]{task.description}"), BarColumn(),
               MofNCompleteColumn() if unit != "bytes" else TextColumn("{task.percentage:>3.0f}%"),
               TimeRemainingColumn()]
    # Bars go to stderr, and only to a terminal: piped output and --json stay clean.
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: float) -> None:
            progress.update(task, advance=n)

        yield advance


# --- tokens and users ---------------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(role: Annotated[str, typer.Option(help="admin, curator, moderator, ...")],
                 name: Annotated[str, typer.Option(help="what the token is for")] = "") -> None:
    """Create an API token and print it alone on standard output (shown once; stored hashed)."""
    parsed = guarded(lambda: parse_role(role))
    db = open_db()
    token = auth.create_token(db, role=parsed, name=name or f"{parsed.value} token", actor=cli_actor().actor)
    print(token)


@token_app.command("list")
def token_list() -> None:
    db = open_db()
    table = Table("id", "name", "role", "created", "by", "revoked")
    with db.read() as session:
        for t in auth.list_tokens(session):
            table.add_row(str(t.id), t.name, t.role, f"{t.created_at:%Y-%m-%d %H:%M}", t.created_by,
                          f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    db = open_db()
    if not auth.revoke_token(db, token_id, actor=cli_actor().actor):
        fail(f"no active token {token_id}")
    err.print(f"token {token_id} revoked")


@user_app.command("create")
def user_create(username: str, role: Annotated[str, typer.Option(help="moderator, curator, ...")],
                password_stdin: Annotated[bool, typer.Option(help="read the password from stdin")] = False,
                hub: Annotated[bool, typer.Option("--hub", help="a user of the hub's console "
                                                  "(BASTION_HUB_DATABASE_URL)")] = False) -> None:
    """Create a console user; the password is prompted for (or read from stdin), never taken as an argument."""
    parsed = guarded(lambda: parse_role(role))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            fail("passwords differ")
    db = open_db(Settings.from_env().hub_database_url if hub else None)
    guarded(lambda: auth.create_user(db, username=username, password=password, role=parsed,
                                     actor=cli_actor().actor))
    err.print(f"user {username} created with role {parsed.value}")


# --- banks --------------------------------------------------------------------------------------------------------


def _parse_thresholds(raw: list[str]) -> dict[str, int]:
    thresholds: dict[str, int] = {}
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            fail(f"--threshold takes SIGNAL_TYPE=DISTANCE, e.g. pdq=31, got {item!r}")
        thresholds[name.strip()] = int(value)
    return thresholds


@bank_app.command("create")
def bank_create(
    name: str,
    description: Annotated[str, typer.Option()] = "",
    restricted: Annotated[bool, typer.Option(help="child-abuse hashes: child-safety roles only")] = False,
    dihedral: Annotated[bool, typer.Option(help="also match flipped and rotated copies")] = False,
    threshold: Annotated[list[str] | None, typer.Option(help="SIGNAL_TYPE=DISTANCE, repeatable")] = None,
) -> None:
    db = open_db()
    thresholds = _parse_thresholds(threshold or [])
    guarded(lambda: banks.create_bank(db, name, actor=cli_actor(), description=description, restricted=restricted,
                                      dihedral=dihedral, thresholds=thresholds))
    err.print(f"bank {name} created")


@bank_app.command("list")
def bank_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    db = open_db()
    with db.read() as session:
        summaries = banks.list_banks(session)
    if as_json:
        for s in summaries:
            print(json.dumps({"name": s.bank.name, "enabled": s.bank.enabled, "restricted": s.bank.restricted,
                              "entries": s.entries, "by_signal_type": s.by_signal_type}))
        return
    table = Table("bank", "entries", "by signal type", "enabled", "restricted", "dihedral", "thresholds")
    for s in summaries:
        by_type = ", ".join(f"{k} {v}" for k, v in sorted(s.by_signal_type.items()))
        table.add_row(s.bank.name, f"{s.entries:,}", by_type, _yes(s.bank.enabled), _yes(s.bank.restricted),
                      _yes(s.bank.dihedral), json.dumps(s.bank.thresholds) if s.bank.thresholds else "defaults")
    out.print(table)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@bank_app.command("enable")
def bank_enable(name: str) -> None:
    db = open_db()
    guarded(lambda: banks.update_bank(db, name, actor=cli_actor(), enabled=True))


@bank_app.command("disable")
def bank_disable(name: str) -> None:
    db = open_db()
    guarded(lambda: banks.update_bank(db, name, actor=cli_actor(), enabled=False))


@bank_app.command("import")
def bank_import(name: str, file: Path) -> None:
    """Import a CSV (header signal_type,value[,category,source,note]); one bad line and nothing is imported."""
    if not file.is_file():
        fail(f"{file}: no such file")
    db = open_db()
    size = file.stat().st_size
    with file.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as f, \
            progress_bar(f"import {file.name}", size, unit="bytes") as advance:
        position = 0

        def on_batch(_rows: int) -> None:
            nonlocal position
            now = raw.tell()
            advance(now - position)
            position = now

        try:
            result = banks.import_csv(db, name, f, actor=cli_actor(), progress=on_batch)
        except UnicodeDecodeError as exc:
            fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start}); nothing imported")
        except BankError as exc:
            fail(f"{file}: {exc}; nothing imported")
        advance(size - position)
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(result.by_signal_type.items()))
    err.print(f"imported {result.added:,} entries into {name} ({result.duplicates:,} duplicates skipped; {by_type})")


@bank_app.command("export")
def bank_export(name: str,
                output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default stdout)")] = None
                ) -> None:
    db = open_db()
    rows = banks.export_rows(db, name, actor=cli_actor())
    try:
        first = next(rows)
    except BankError as exc:
        fail(str(exc))
    target = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        for line in banks.csv_lines([first]):
            target.write(line)
        for line in banks.csv_lines(rows):
            target.write(line)
    finally:
        if output:
            target.close()


# --- hashing and scanning -----------------------------------------------------------------------------------------


@app.command("hash")
def hash_files(files: list[Path]) -> None:
    """Print one JSON object per signal: path, signal_type, value, quality (where one applies)."""
    status = 0
    for file in files:
        if not file.is_file():
            err.print(f"[red]error:[/red] {file}: no such file", highlight=False)
            status = 1
            continue
        result = hash_path(file)
        for e in result.errors:
            err.print(f"[yellow]warning:[/yellow] {file}: {e}", highlight=False)
        for s in result.signals:
            print(json.dumps({"path": str(file), **signal_json(s)}))
    raise typer.Exit(status)


@app.command("scan")
def scan(paths: list[Path],
         bank: Annotated[list[str] | None, typer.Option(help="only these banks (repeatable)")] = None,
         as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file")] = False) -> None:
    """Hash and match every file under PATHS; a summary at the end (JSON lines with --json)."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        fail(f"{missing[0]}: no such file or directory")
    db = open_db()
    matcher = load_matcher(db)
    files = list(walk(paths))
    with progress_bar("scan", len(files)) as advance:
        summary = scan_files(files, matcher, banks=set(bank) if bank else None,
                             on_file=lambda r: (advance(1), print(json.dumps(r.to_json())) if as_json else None))
    _print_summary(summary)


def load_matcher(db: Database) -> Matcher:
    matcher = Matcher(db)
    with db.read() as session:
        total = sum(s.entries for s in banks.list_banks(session))
    with progress_bar("load banks", total) as advance:
        matcher.load(progress=advance)
    return matcher


def _print_summary(summary: ScanSummary) -> None:
    table = Table("files", "matched", "unreadable", title="scan summary")
    table.add_row(f"{summary.files:,}", f"{summary.matched:,}", f"{summary.unreadable:,}")
    err.print(table)
    if summary.by_bank:
        by_bank = Table("bank", "files matched", title="matches by bank")
        for name, n in sorted(summary.by_bank.items()):
            by_bank.add_row(name, f"{n:,}")
        err.print(by_bank)


# --- audit, database, server, demo --------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit 1 and name each altered or missing entry."""
    result = audit.verify(open_db())
    for p in result.problems:
        err.print(f"[red]entry {p.entry_id}:[/red] {p.reason}", highlight=False)
    if not result.ok:
        fail(f"audit log is broken: {len(result.problems)} problem(s) in {result.checked} entries")
    err.print(f"audit log intact: {result.checked} entries verified")


@db_app.command("upgrade")
def db_upgrade() -> None:
    open_db()
    err.print("database schema is current")


@app.command("serve")
def serve(host: Annotated[str, typer.Option()] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000) -> None:
    """Run the API and the console."""
    import uvicorn

    from bastion.web.app import create_app

    open_db()
    uvicorn.run(guarded(lambda: create_app(Settings.from_env())), host=host, port=port, log_level="info",
                access_log=False)  # access logs would carry query strings; metrics count requests instead


@app.command("demo")
def demo(workdir: Annotated[Path, typer.Option(help="where demo media is written")] = Path("bastion-demo"),
         serve_after: Annotated[bool, typer.Option("--serve", help="then run the console")] = False) -> None:
    """Seed sample banks, scan sample uploads against them, and show what matched."""
    from bastion.demo import run_demo

    db = open_db()
    run_demo(db, workdir, out=out, err=err, load_matcher=load_matcher, print_summary=_print_summary)
    if serve_after:
        serve()


# --- classifiers --------------------------------------------------------------------------------------------------

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
    from bastion.moderation.services import decided_texts

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
def classifier_metrics(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
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


# --- removal orders: the contact point and the hub (TCO, issue 4) -------------------------------------------------

orders_app = typer.Typer(help="Removal orders at this platform's contact point: signing key, trusted senders.",
                         no_args_is_help=True)
hub_app = typer.Typer(help="The hub that carries removal orders from authorities to contact points.",
                      no_args_is_help=True)
app.add_typer(orders_app, name="orders")
app.add_typer(hub_app, name="hub")


@orders_app.command("keygen")
def orders_keygen() -> None:
    """Make an Ed25519 key: the private key alone on stdout (keep it secret), the public key on stderr."""
    from bastion.orders.wire import SigningKey

    key = SigningKey.generate()
    print(key.to_text())
    err.print(f"public key: {key.public_text}  (key id {key.key_id})")


@orders_app.command("public-key")
def orders_public_key(hub: Annotated[bool, typer.Option("--hub", help="the hub's key, not the platform's")] = False,
                      ) -> None:
    """Print the public key of BASTION_ORDERS_SIGNING_KEY (or BASTION_HUB_SIGNING_KEY), to register elsewhere."""
    from bastion.orders.wire import SigningKey

    settings = Settings.from_env()
    text = settings.hub_signing_key if hub else settings.orders_signing_key
    if not text:
        fail(f"{'BASTION_HUB_SIGNING_KEY' if hub else 'BASTION_ORDERS_SIGNING_KEY'} is not set "
             "(make one with: bastion orders keygen)")
    print(guarded(lambda: SigningKey.from_text(text)).public_text)


@orders_app.command("trust")
def orders_trust(name: str,
                 key: Annotated[str, typer.Option(help="the sender's Ed25519 public key")],
                 answer_url: Annotated[str, typer.Option(help="where Annex II/III answers go")],
                 role: Annotated[str, typer.Option(help="hub or authority")] = "hub",
                 member_state: Annotated[str, typer.Option(help="an authority's Member State")] = "") -> None:
    """Accept signed orders from a hub's or an authority's key."""
    from bastion.core.clock import SystemClock
    from bastion.orders.interfaces import SenderRole
    from bastion.orders.services import trust_key

    sender = guarded(lambda: SenderRole(role))
    db = open_db()
    row = guarded(lambda: trust_key(db, name=name, role=sender, public_key=key, clock=SystemClock(),
                                    member_state=member_state, answer_url=answer_url))
    err.print(f"trusted {row.role} {row.name!r} (key id {row.key_id})")


@orders_app.command("untrust")
def orders_untrust(key_id: str) -> None:
    from bastion.core.clock import SystemClock
    from bastion.orders.services import revoke_key

    if not revoke_key(open_db(), key_id, clock=SystemClock()):
        fail(f"no trusted key {key_id}")
    err.print(f"key {key_id} no longer trusted")


@orders_app.command("list")
def orders_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Orders received, overdue first, with the time left on their hour."""
    from bastion.core.clock import SystemClock
    from bastion.orders.services import received_orders

    rows = received_orders(open_db(), SystemClock().now())
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("reference", "state", "received", "seconds left", "overdue", "action")
    for r in rows:
        table.add_row(str(r["reference"]), str(r["state"]), str(r["received_at"])[:19], str(r["seconds_left"] or ""),
                      "yes" if r["overdue"] else "", str(r["action"] or ""))
    out.print(table)


@hub_app.command("serve")
def hub_serve(host: Annotated[str, typer.Option()] = "127.0.0.1",
              port: Annotated[int, typer.Option()] = 8100) -> None:
    """Run the hub (BASTION_HUB_DATABASE_URL, BASTION_HUB_SIGNING_KEY)."""
    import uvicorn

    from bastion.hub.app import create_hub_app
    from bastion.web.hub_pages import with_console

    settings = Settings.from_env()
    if not settings.hub_signing_key:
        fail("BASTION_HUB_SIGNING_KEY is not set (make one with: bastion orders keygen)")
    open_db(settings.hub_database_url)
    uvicorn.run(with_console(create_hub_app(settings)), host=host, port=port, log_level="info", access_log=False)


@hub_app.command("authority")
def hub_authority(name: str,
                  member_state: Annotated[str, typer.Option(help="e.g. FR")],
                  key: Annotated[list[str], typer.Option(help="Ed25519 public key (repeatable)")],
                  authority_type: Annotated[str, typer.Option("--type", help="judicial, law_enforcement, other")]
                  = "law_enforcement") -> None:
    """Register a competent authority; its API token (role authority) is printed alone on stdout, once."""
    from bastion.core.clock import SystemClock
    from bastion.hub.services import HubError, register_authority
    from bastion.orders.wire import AuthorityType

    kind = guarded(lambda: AuthorityType(authority_type))
    db = open_db(Settings.from_env().hub_database_url)
    try:
        done = register_authority(db, name=name, member_state=member_state, authority_type=kind, public_keys=key,
                                  clock=SystemClock(), actor=cli_actor().actor)
    except (HubError, ValueError) as exc:
        fail(str(exc))
    print(done.token)
    err.print(f"authority {name!r} ({done.authority.member_state}) registered")


@hub_app.command("authority-user")
def hub_authority_user(username: str, authority: str) -> None:
    """Let a hub console user (bastion user create NAME --role authority --hub) act for a registered authority."""
    from bastion.core.clock import SystemClock
    from bastion.hub.services import HubError, link_user

    db = open_db(Settings.from_env().hub_database_url)
    try:
        found = link_user(db, username, authority, clock=SystemClock(), actor=cli_actor().actor)
    except HubError as exc:
        fail(str(exc))
    err.print(f"user {username!r} acts for {found.name} ({found.member_state}) in the hub's console")


@hub_app.command("provider")
def hub_provider(name: str,
                 contact_point: Annotated[str, typer.Option(help="the platform's base URL")],
                 member_state: Annotated[str, typer.Option(help="Member State of establishment")],
                 key: Annotated[list[str], typer.Option(help="Ed25519 public key (repeatable)")],
                 language: Annotated[list[str] | None, typer.Option(help="accepted language (repeatable)")] = None,
                 ) -> None:
    """Register a hosting service provider and its contact point."""
    from bastion.core.clock import SystemClock
    from bastion.hub.services import HubError, register_provider

    db = open_db(Settings.from_env().hub_database_url)
    try:
        provider = register_provider(db, name=name, contact_point_url=contact_point, member_state=member_state,
                                     languages=language or ["en"], public_keys=key, clock=SystemClock())
    except (HubError, ValueError) as exc:
        fail(str(exc))
    err.print(f"provider {provider.name!r} registered; orders go to {provider.contact_point_url}/v1/orders")


# --- child-safety reports (reporting/) and the EU Centre (centre/) --------------------------------------------------

reports_app = typer.Typer(help="Child-safety reports to NCMEC and the EU Centre.", no_args_is_help=True)
centre_app = typer.Typer(help="The EU Centre: receives providers' reports, forwards them to law enforcement.",
                         no_args_is_help=True)
app.add_typer(reports_app, name="reports")
app.add_typer(centre_app, name="centre")


def _reporting() -> reports.Reporting:
    from bastion.core.clock import SystemClock

    settings = Settings.from_env()
    return reports.Reporting(open_db(settings.database_url), SystemClock(), settings.media_sealer(), settings)


@reports_app.command("draft")
def reports_draft() -> None:
    """Draft reports for confirmed material not yet reported (one per offending account)."""
    drafted = reports.draft_pending(_reporting())
    err.print(f"{len(drafted)} report(s) drafted or extended")
    for report_id in drafted:
        print(report_id)


@reports_app.command("list")
def reports_list(state: Annotated[str | None, typer.Option(help="draft, queued, submitted, finished, failed, "
                                                                 "retracted")] = None) -> None:
    """Reports with their state and each centre's id and error."""
    from bastion.reporting.interfaces import ReportState

    wanted = guarded(lambda: ReportState(state)) if state else None
    rep = _reporting()
    table = Table("report", "account", "state", "files", "NCMEC", "EU Centre")
    with rep.db.read() as session:
        for report in reports.list_reports(session, wanted):
            view = reports.report_view(session, report)
            centres = view["centres"]
            cells = [" ".join(str(v) for v in (c.get("state"), c.get("id") or "", c.get("error") or "") if v)
                     for c in (centres.get("ncmec", {}), centres.get("eu_centre", {}))]
            table.add_row(report.id, report.account_id, report.state, str(len(view["files"])), *cells)
    out.print(table)


@reports_app.command("export")
def reports_export(directory: Path) -> None:
    """Write each report as it was (or would be) sent: NCMEC XML and EU Centre JSON, one file each."""
    from bastion.reporting.interfaces import ReportingError

    rep = _reporting()
    try:
        with progress_bar("exporting reports", None) as advance:
            written = reports.export(rep, directory, advance=advance, actor=cli_actor().actor)
    except ReportingError as exc:
        fail(f"export stopped: {exc}")
    err.print(f"{len(written)} file(s) written to {directory} (owner-only)")


@reports_app.command("purge")
def reports_purge() -> None:
    """Delete preserved material whose preservation period has ended (each purge is audited)."""
    purged = reports.purge_expired(_reporting())
    err.print(f"material of {len(purged)} report(s) purged")


@centre_app.command("serve")
def centre_serve(host: Annotated[str, typer.Option()] = "127.0.0.1",
                 port: Annotated[int, typer.Option()] = 8200) -> None:
    """Run the EU Centre (BASTION_CENTRE_DATABASE_URL, BASTION_CENTRE_FORWARD, BASTION_CENTRE_FORWARD_SECRET)."""
    import uvicorn

    from bastion.centre.app import create_centre_app
    from bastion.centre.services import parse_forwarding

    settings = Settings.from_env()
    guarded(lambda: parse_forwarding(settings.centre_forward))
    if settings.centre_forward and not settings.centre_forward_secret:
        fail("BASTION_CENTRE_FORWARD_SECRET is not set: forwarded reports would go unsigned")
    open_db(settings.centre_database_url)
    uvicorn.run(create_centre_app(settings), host=host, port=port, log_level="info", access_log=False)


@centre_app.command("provider")
def centre_provider(name: str) -> None:
    """Register a provider at the Centre; its API token (role platform) is printed alone on stdout, once."""
    db = open_db(Settings.from_env().centre_database_url)
    token = guarded(lambda: auth.create_token(db, role=Role.PLATFORM, name=name, actor=cli_actor().actor))
    print(token)
    err.print(f"provider {name!r} may now submit reports to /v1/centre/reports")
