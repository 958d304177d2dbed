"""Commands for feeds: ``bastion feed audit``, the sock-puppet audit of a recommender (docs/feed-audit.md)."""

from __future__ import annotations

import datetime as dt
import enum
import logging
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bastion.cli.app import app
from bastion.cli.common import cli_actor, err, fail, open_db, out

if TYPE_CHECKING:
    from bastion.feed.audit.gates import Tokens

feed_app = typer.Typer(help="Feeds: audits of what a recommender serves to new accounts.", no_args_is_help=True)
app.add_typer(feed_app, name="feed")


class GateMode(enum.StrEnum):
    LOOPBACK = "loopback"
    BASTION = "bastion"
    OFF = "off"


class Scenario(enum.StrEnum):
    NEWSGUARD = "newsguard"
    AMNESTY = "amnesty"
    ALL = "all"


@contextmanager
def loopback_bastion(catalogue_size: int, seed: int) -> Iterator[tuple[str, Tokens]]:
    """A Bastion of its own on 127.0.0.1 (a throwaway SQLite database), holding the synthetic catalogue registered
    through its public API: the offline audit's gate. Yields its URL and the tokens it made."""
    import uvicorn

    from bastion.core.auth import services as auth
    from bastion.core.auth.roles import Role
    from bastion.core.config import Settings
    from bastion.core.db import Database, migrate
    from bastion.core.sealing import new_key
    from bastion.feed.audit import catalogue
    from bastion.feed.audit.gates import HttpGate, Tokens, await_decisions, register_catalogue, serves_gate
    from bastion.web.app import create_app

    # a throwaway instance: its production gaps (no webhook, no signing key) are by design, not worth a warning
    production_log = logging.getLogger("bastion.core.production")
    level = production_log.level
    production_log.setLevel(logging.ERROR)
    with ExitStack() as restore, tempfile.TemporaryDirectory(prefix="bastion-feed-audit-") as tmp:
        restore.callback(production_log.setLevel, level)  # the caller's logging as it was (tests share a process)
        url = f"sqlite:///{Path(tmp) / 'audit.db'}"
        migrate(url)
        db = Database(url)
        tokens = Tokens(platform=auth.create_token(db, role=Role.PLATFORM, name="feed audit", actor="feed-audit"),
                        moderator=auth.create_token(db, role=Role.MODERATOR, name="feed audit", actor="feed-audit"))
        application = create_app(Settings(database_url=url, spool_dir=Path(tmp), media_key=new_key(),
                                          media_key_file=Path(tmp) / "media.key"), db=db)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        try:
            while not server.started:
                if not thread.is_alive():
                    fail("the loopback Bastion did not start")
                time.sleep(0.05)
            if not serves_gate(base, tokens.platform):
                fail("this Bastion has no feed gate (/v1/feed/filter); use --gate off, or --gate bastion with "
                     "--bastion")
            err.print(f"registering {catalogue_size} catalogue items in a loopback Bastion at {base}",
                      highlight=False)
            built = catalogue.build(seed, catalogue_size)
            done = register_catalogue(base, tokens, built)
            err.print(f"registered {done['registered']} items, decided {done['decided']} cases", highlight=False)
            await_decisions(HttpGate(base, tokens.platform), built)
            yield base, tokens
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
            db.dispose()


@feed_app.command("audit")
def feed_audit(
        scenario: Annotated[Scenario, typer.Option(help="personas: newsguard (adults, war content), amnesty "
                                                        "(teens, mental-health content) or all")] = Scenario.ALL,
        minutes: Annotated[float, typer.Option(help="simulated minutes each persona watches")] = 60.0,
        seed: Annotated[int, typer.Option(help="seed of the catalogue, the recommender and the personas")] = 9,
        catalogue_size: Annotated[int, typer.Option(help="items in the synthetic catalogue")] = 1500,
        slate: Annotated[int, typer.Option(help="items per recommendation slate")] = 8,
        bucket_minutes: Annotated[float | None, typer.Option(
            help="width of a time bucket in the figures (minutes; default 5, or 1 for runs under 10 minutes)")]
        = None,
        recommender: Annotated[str, typer.Option(help="'reference' (bundled, offline) or the URL of the "
                                                      "platform's recommender (POST {url}/recommend)")] = "reference",
        recommender_token: Annotated[str, typer.Option(help="bearer token for the platform's recommender",
                                                       envvar="BASTION_RECOMMENDER_TOKEN")] = "",
        gate: Annotated[GateMode, typer.Option(help="loopback: a Bastion started here holding the catalogue "
                                                    "(offline); bastion: the one at --bastion; off: no gate")]
        = GateMode.LOOPBACK,
        bastion: Annotated[str, typer.Option(help="URL of a running Bastion whose gate is used (--gate bastion)")]
        = "",
        token: Annotated[str, typer.Option(help="that Bastion's token (role platform)", envvar="BASTION_TOKEN")] = "",
        compare: Annotated[int | None, typer.Option(help="id of a stored run to compare this one with")] = None,
        report_file: Annotated[Path | None, typer.Option("--out", help="write the HTML report to this file")] = None,
        store_run: Annotated[bool, typer.Option("--store/--no-store", help="store the run in the database")] = True,
) -> None:
    """Run sock-puppet personas against a recommender for N simulated minutes, with and without the gate; print the
    figures by persona, store the run and write the HTML report."""
    from bastion.feed.audit import catalogue, report, runner, store
    from bastion.feed.audit.gates import Gate, GateError, HttpGate
    from bastion.feed.audit.personas import SCENARIOS
    from bastion.feed.audit.recommender import HttpRecommender, RecommenderError, ReferenceRecommender

    if bucket_minutes is None:
        bucket_minutes = 5.0 if minutes >= 10 else 1.0
    if not 0 < minutes <= 24 * 60 or not 0 < bucket_minutes <= minutes:
        fail("--minutes is between 0 and 1440, and --bucket-minutes between 0 and --minutes")
    if not 10 <= catalogue_size <= 100_000 or not 1 <= slate <= 100:
        fail("--catalogue-size is between 10 and 100000, --slate between 1 and 100")
    if gate is GateMode.BASTION and not (bastion and token):
        fail("--gate bastion needs --bastion URL and --token")
    db = open_db() if store_run or compare is not None else None
    earlier = None
    if compare is not None and db is not None:
        try:
            earlier = store.get(db, compare)
        except store.AuditRunNotFound as exc:
            fail(str(exc))
    gate_name = {GateMode.LOOPBACK: "loopback", GateMode.OFF: "off", GateMode.BASTION: bastion}[gate]
    settings = runner.AuditSettings(scenario.value, SCENARIOS[scenario.value], minutes, seed, catalogue_size, slate,
                                    bucket_minutes, recommender, gate_name, compare)
    cat = catalogue.build(seed, catalogue_size)
    rec = (ReferenceRecommender(cat, seed, slate) if recommender == "reference"
           else HttpRecommender(recommender, recommender_token, cat))
    started = dt.datetime.now(dt.UTC)

    def audit(g: Gate | None) -> dict[str, object]:
        try:
            return runner.run(settings, rec, g, progress=lambda what: err.print(f"  {what}", highlight=False))
        except (GateError, RecommenderError) as exc:
            fail(str(exc))

    if gate is GateMode.LOOPBACK:
        with loopback_bastion(catalogue_size, seed) as (base, tokens):
            results = audit(HttpGate(base, tokens.platform))
    else:
        results = audit(HttpGate(bastion, token) if gate is GateMode.BASTION else None)
    results["catalogue"] = cat.counts()
    run_id = None
    if store_run and db is not None:
        run_id = store.save(db, settings=settings.to_json(), results=results, started_at=started,
                            finished_at=dt.datetime.now(dt.UTC), created_by=cli_actor().actor).id
    _print(results, earlier.results if earlier else None, earlier.id if earlier else None)
    if report_file is not None:
        report_file.write_text(report.document(run_id, settings.to_json(), results,
                                               earlier.results if earlier else None))
        err.print(f"report: {report_file}", highlight=False)
    if run_id is not None:
        err.print(f"stored as run {run_id} (console: /console/feed/audits/{run_id})", highlight=False)


def _print(results: dict[str, object], earlier: dict[str, object] | None, earlier_id: int | None) -> None:
    from bastion.feed.audit.runner import compare

    table = Table("persona", "band", "condition", "items", "first harmful (min)", "harmful", "borderline",
                  "withheld")
    for p in results["personas"]:  # type: ignore[attr-defined]
        for condition, f in p["conditions"].items():
            first = f["first_harmful_minute"]
            table.add_row(p["id"], p["band"], condition.replace("_", " "), str(f["items"]),
                          "never" if first is None else f"{first:.1f}", f"{100 * f['harmful_share']:.1f}%",
                          f"{100 * f['borderline_share']:.1f}%", str(f["withheld"]["items"]))
    out.print(table)
    if earlier is not None:
        diff = Table("persona", "condition", "figure", f"run {earlier_id}", "this run",
                     title=f"compared with run {earlier_id}")
        for r in compare(earlier, results):
            diff.add_row(r["persona"], r["condition"].replace("_", " "), r["figure"], str(r["before"]),
                         str(r["after"]))
        out.print(diff)
