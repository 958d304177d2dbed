"""Commands for the audit log, the database schema, the server and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli.app import app
from bastion.cli.banks import load_matcher
from bastion.cli.common import HostOption, PortOption, err, fail, guarded, open_db, out, require_free_port
from bastion.core.audit import services as audit
from bastion.core.config import Settings

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Print a checkpoint of the chain's head (one JSON line, MAC'd with the audit key): append it to a file kept
    away from the database, to verify against later (``audit verify --checkpoint FILE``)."""
    db = open_db()
    mark = audit.checkpoint(db, Settings.from_env().audit_mac_key())
    out.print(mark.to_line(), markup=False, highlight=False, soft_wrap=True)
    err.print(f"checkpoint of {mark.seq} entries")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="a file of checkpoints (one a line): also detect cut-off or rewritten entries")] = None,
) -> None:
    """Walk the hash chain; exit 1 and name each altered or missing entry, and each checkpoint that does not hold."""
    marks: list[audit.Checkpoint] = []
    key: bytes | None = None
    if checkpoint is not None:
        marks = _read_checkpoints(checkpoint)
        settings = Settings.from_env()
        if not settings.audit_key and not settings.audit_key_file.exists():
            fail(f"no audit key to check {checkpoint} with: set BASTION_AUDIT_KEY, or BASTION_AUDIT_KEY_FILE "
                 f"(now {settings.audit_key_file}), to the key the checkpoints were made with")
        key = settings.audit_mac_key()
    result = audit.verify(open_db(), marks, key)
    for p in result.problems:
        err.print(f"[red]entry {p.entry_id}:[/red] {p.reason}", highlight=False)
    if not result.ok:
        fail(f"audit log is broken: {len(result.problems)} problem(s) in {result.checked} entries")
    anchored = f", {len(marks)} checkpoint(s) hold" if marks else ""
    err.print(f"audit log intact: {result.checked} entries verified{anchored}")


def _read_checkpoints(path: Path) -> list[audit.Checkpoint]:
    try:
        marks = audit.read_checkpoints(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"{path}: {exc}")
    if not marks:
        fail(f"{path} holds no checkpoint")
    return marks


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database (BASTION_DATABASE_URL) to the current schema; every command does this on its own too."""
    open_db()
    err.print("database schema is current")


@app.command("serve")
def serve(host: HostOption = "127.0.0.1", port: PortOption = 8000) -> None:
    """Run the API and the console; settings production still needs are logged as it starts."""
    from bastion.core.serving import serve as run_server
    from bastion.web.app import create_app

    require_free_port(host, port)
    open_db()
    run_server(guarded(lambda: create_app(Settings.from_env())), host=host, port=port, log_level="info",
               access_log=False)  # access logs would carry query strings; metrics count requests instead


@app.command("extensions")
def extensions_list(as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False) -> None:
    """The signal types and classifier kinds in force, and who declares each (bastion, or an extension)."""
    from rich.table import Table

    from bastion.classifiers import registry as classifier_registry
    from bastion.hashing import registry as signal_registry

    rows = [("signal type", t.name, signal_registry.origin(t.name)) for t in signal_registry.signal_types()]
    rows += [("classifier kind", k.kind, classifier_registry.origin(k.kind)) for k in classifier_registry.kinds()]
    if as_json:
        for what, name, origin in rows:
            print(json.dumps({"what": what, "name": name, "from": origin}))
        return
    table = Table("what", "name", "from")
    for row in rows:
        table.add_row(*row)
    out.print(table)


@app.command("demo")
def demo(workdir: Annotated[Path, typer.Option(help="where demo media is written")] = Path("bastion-demo"),
         serve_after: Annotated[bool, typer.Option("--serve", help="then run the console")] = False) -> None:
    """Seed sample banks, scan sample uploads against them, and show what matched."""
    from bastion.demo import run_demo

    db = open_db()
    run_demo(db, workdir, console=out, load_matcher=load_matcher)  # one stream: in order when redirected
    if serve_after:
        serve()


