"""Interaction checks for minors: decisions per second in process, and p99 of a batch of 100 over HTTP.

In process, on one thread: ``--decisions`` random checks (seeded: random bands, actions and context) decided by
``RuleSet.decide`` with Bastion's default rules (the floor, then the rules of that action only), against the named
baseline, **a plain Python loop over the whole rule list** (the floor and the file's rules in order, testing each
rule's actions, then its conditions): the same rules, the same answers (checked), no index by action.
Goal: at least 100,000 decisions per second per core.

Over HTTP: the platform app under uvicorn on loopback (SQLite in a temporary directory, or ``--database-url``, an
empty PostgreSQL database; ages recorded for the accounts), ``--batches`` sequential
``POST /v1/interactions/check-batch`` of 100 checks each from one keep-alive client in this process, sent as JSON
prepared beforehand, to the server in its own process (as a platform's client is; ``--shared-process``: a thread of
this one, sharing its interpreter lock, as this bench ran before); every deny in them is recorded as an event, as in
production, and the app's workers that follow those writes run beside the server as in production (SQLite's WAL
checkpoint, the grooming watch; ``--without-workers``: neither). p50, p99 and max: the random checks deny about half
(the worst case). Then, once the watch has taken those in, ``--batches / 2`` batches of checks among adults (all
allowed: nothing written), the read path of a feed, and ``--batches / 2`` with ten random checks among ninety
between adults (about five denied: a comment thread as a platform sends it). Goal: p99 under 5 ms. Also the CPU
time per batch (server, its workers and client), steadier than wall time on a shared machine; ``server`` says what
uvicorn ran on (httptools and uvloop when installed). The server is the one ``bastion serve`` runs
(``core/serving.py``). With ``PYTHONPATH`` naming an older checkout's ``src``, this file measures that checkout (the
baseline of a change). The SQLite file lies in the temporary directory: ``TMPDIR=/dev/shm`` puts it in memory, which
tells how much of the tail is the disk's (a commit's write stalling in the file system).

``--accounts`` (default 500) draws the checks among that many accounts, and ``--history`` seeds that many past
denies first: the realistic case for the look-ups by account and the event log's indexes, which with 500 accounts
and an empty log stay in cache (``seed``).

    python bench/interactions.py [--decisions 300000] [--batches 300] [--seed 1] [--database-url postgresql://...]
                                 [--without-workers] [--shared-process] [--accounts 500] [--history 0]

Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_token
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import CHECKPOINT_SECONDS, Database, is_sqlite, migrate
from bastion.core.worker import Worker
from bastion.minors.interfaces import SOLO_ACTIONS, Action, Audience, Band, Decision

try:
    from bastion.minors.interfaces import QUESTION_ACTIONS
except ImportError:  # a checkout from before ``notify``, run with this file as the baseline
    QUESTION_ACTIONS = tuple(Action)
try:
    from bastion.minors.interactions import watch_grooming
except ImportError:  # a checkout from before the grooming watch: grooming is looked at in the request
    watch_grooming = None  # type: ignore[assignment]
try:
    from bastion.core.serving import Server
except ImportError:  # a checkout from before the served heap was settled (core/serving.py)
    Server = uvicorn.Server  # type: ignore[misc]
from bastion.minors.rules import DEFAULT_RULES_PATH, FLOOR, Facts, Rule, RuleSet, Verdict, load_rules
from bastion.web.app import create_app
from stats import percentile

SOLO = SOLO_ACTIONS


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def random_checks(n: int, rng: random.Random) -> list[tuple[Action, Facts]]:
    # the same mix as the first measurements: notify (quiet hours, by the clock) is left out
    bands, actions, audiences = list(Band), list(QUESTION_ACTIONS), [None, *Audience]
    checks = []
    for _ in range(n):
        action = rng.choice(actions)
        target = None if action in SOLO else rng.choice(bands)
        checks.append((action, Facts(rng.choice(bands), target, rng.random() < 0.5, rng.random() < 0.5,
                                     rng.random() < 0.2, rng.random() < 0.5, rng.random() < 0.2, rng.random() < 0.1,
                                     rng.choice(audiences))))
    return checks


def baseline_decide(rules: list[Rule], default: Decision, action: Action, facts: Facts) -> Verdict:
    """The baseline: one loop over every rule, in order, floor first; shadow rules skipped."""
    for rule in rules:
        if not rule.shadow and action in rule.actions and rule.matches(facts):
            return Verdict(rule.decision, rule.id, rule.explanation, rule.floor)
    return Verdict(default, "default", "")


def in_process(rules: RuleSet, checks: list[tuple[Action, Facts]]) -> dict[str, float]:
    flat = [*FLOOR, *rules.rules]
    decide = rules.decide
    start = time.perf_counter()
    for action, facts in checks:
        decide(action, facts)
    bastion = len(checks) / (time.perf_counter() - start)
    start = time.perf_counter()
    for action, facts in checks:
        baseline_decide(flat, rules.default, action, facts)
    baseline = len(checks) / (time.perf_counter() - start)
    for action, facts in checks[:20_000]:  # the same answers
        assert decide(action, facts).rule == baseline_decide(flat, rules.default, action, facts).rule
    return {"bastion_decisions_per_s": round(bastion), "baseline_decisions_per_s": round(baseline),
            "speedup": round(bastion / baseline, 2)}


def server_kind() -> str:
    """What uvicorn runs on here (its ``auto`` choice): httptools and uvloop when installed, else h11 and asyncio."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{http}+{'uvloop' if importlib.util.find_spec('uvloop') else 'asyncio'}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def over_http(batches: int, rng: random.Random, database_url: str = "", *, workers: bool = True,
              shared_process: bool = False, accounts: int = 500, history: int = 0) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        db = Database(url)
        token = create_token(db, role=Role.PLATFORM, name="bench", actor="bench")
        names = [f"acct{i}" for i in range(accounts)]
        years = [rng.choice(AGES) for _ in names]  # drawn as before --accounts: the same batches by seed
        port = free_port()
        if shared_process:
            server_pid = None
            app = create_app(Settings(database_url=url, spool_dir=Path(tmp)), db=db, refresh=False)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            threading.Thread(target=server.run, daemon=True).start()
            background = _writes_workers(app, db) if workers else []
            for worker in background:
                worker.start()
        else:  # the platform calls Bastion from its own process: the server gets its own, with its workers
            db.dispose()
            child = multiprocessing.get_context("spawn").Process(target=_serve, args=(url, tmp, port, workers),
                                                                 daemon=True)
            child.start()
            server_pid = child.pid
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            wait_until_serving(client)
            record_ages([(db, client)], names, years, history, rng)
            warm_up, measured, feed, some = phases(batches, rng, names)
            for body in warm_up:
                client.post("/v1/interactions/check-batch", content=body,
                            headers={"Content-Type": "application/json"}).raise_for_status()
            times, cpu = _timed(client, measured, server_pid)
            _watched(db, workers)  # each phase on its own traffic, not the last one's backlog
            no_deny, no_deny_cpu = _timed(client, feed, server_pid)
            few, few_cpu = _timed(client, some, server_pid)
        if shared_process:
            for worker in background:
                worker.stop()
            server.should_exit = True
        else:
            child.terminate()
            child.join()
        db.dispose()
    return {"batch_of_100_p50_ms": round(percentile(times, 0.5), 2),
            "batch_of_100_p99_ms": round(percentile(times, 0.99), 2), "batch_of_100_max_ms": round(max(times), 2),
            "batch_of_100_no_deny_p50_ms": round(percentile(no_deny, 0.5), 2),
            "batch_of_100_no_deny_p99_ms": round(percentile(no_deny, 0.99), 2),
            "batch_of_100_few_denies_p50_ms": round(percentile(few, 0.5), 2),
            "batch_of_100_few_denies_p99_ms": round(percentile(few, 0.99), 2),
            "batch_of_100_cpu_ms": round(cpu, 2), "batch_of_100_no_deny_cpu_ms": round(no_deny_cpu, 2),
            "batch_of_100_few_denies_cpu_ms": round(few_cpu, 2)}


#: The ages drawn for the accounts, one each: about half of the random checks among them are denied.
AGES = (11, 14, 16, 17, 25, 40)
#: Up to this many accounts (and no history) the ages are recorded through ``PUT /v1/accounts/{id}/age``, one request
#: each, as the bench did before ``--accounts``; more are seeded straight into the database (``seed``).
PUT_ACCOUNTS = 500
SEED_CHUNK = 20_000


def record_ages(servers: list[tuple[Database, httpx.Client]], names: list[str], years: list[int], history: int,
                rng: random.Random) -> None:
    """The accounts' ages (and ``history`` past denies) in each server's database: up to ``PUT_ACCOUNTS`` with no
    history through ``PUT /v1/accounts/{id}/age``, as this bench always did; more by ``seed``."""
    if len(names) > PUT_ACCOUNTS or history:
        seed([db for db, _ in servers], names, years, history, random.Random(rng.random()))
        return
    for name, age in zip(names, years, strict=True):
        for _, client in servers:
            client.put(f"/v1/accounts/{name}/age", json={"years": age}).raise_for_status()


def seed(dbs: list[Database], names: list[str], years: list[int], history: int, rng: random.Random) -> None:
    """A platform's state before the measured batches, written straight into each of ``dbs`` (chunk by chunk, each
    chunk to every one in turn, so that a paired bench's two databases are built alike): each account's age as
    ``PUT /v1/accounts/{id}/age`` records it (its row and its ``age.recorded`` event; no under-13 case, which no check
    reads), and ``history`` past denies between random accounts, 2 to 365 days old (outside the default grooming
    window), with the grooming watch's mark moved past them, as on a platform whose watch has kept up. The realistic
    case for the per-account look-ups and indexes: with 500 accounts and no history every leaf they touch stays in
    cache."""
    from sqlalchemy import func, insert, select

    from bastion.core.events import NewEvent, move_mark, record_many
    from bastion.minors.bands import band_for
    from bastion.minors.events import AgeRecorded, Denied, EventKind
    from bastion.minors.interactions import GROOMING_LOG
    from bastion.minors.interfaces import AgeBasis
    from bastion.minors.models import AgeRecord, MinorEvent, MinorsMark
    from bastion.minors.services import account_subject

    now = SystemClock().now()
    declared = AgeBasis.DECLARED.value
    rows = list(zip(names, years, strict=True))
    for start in range(0, len(rows), SEED_CHUNK):
        chunk = rows[start:start + SEED_CHUNK]
        ages = [{"account_id": name, "basis": declared, "years": age, "method": "", "confidence": None,
                 "band": band_for(AgeBasis.DECLARED, age).value, "observed_at": now, "recorded_at": now}
                for name, age in chunk]
        recorded = [NewEvent(account_subject(name), EventKind.AGE_RECORDED, "bench", now, AgeRecorded(
            basis=declared, years=age, band=band_for(AgeBasis.DECLARED, age).value, observed_at=now.isoformat()))
            for name, age in chunk]
        for db in dbs:
            with db.write() as session:
                session.execute(insert(AgeRecord), ages)
                record_many(session, MinorEvent, recorded)
        log(f"seeded {start + len(chunk):,} of {len(rows):,} accounts")
    band = {name: band_for(AgeBasis.DECLARED, age).value for name, age in rows}
    actions = [a.value for a in QUESTION_ACTIONS if a not in SOLO]
    for start in range(0, history, SEED_CHUNK):
        events = []
        for _ in range(min(SEED_CHUNK, history - start)):
            actor, target = rng.sample(names, 2)
            at = now - dt.timedelta(days=rng.uniform(2, 365))
            events.append(NewEvent(account_subject(actor), EventKind.DENIED, "bench", at, Denied(
                action=rng.choice(actions), target=target, actor_band=band[actor], target_band=band[target],
                rule="history")))
        for db in dbs:
            with db.write() as session:
                record_many(session, MinorEvent, events)
        log(f"seeded {start + len(events):,} of {history:,} past denies")
    for db in dbs:
        moved = False
        while not moved:  # a server already running (the paired bench's) may move the mark meanwhile: again
            with db.write() as session:
                mark = session.get(MinorsMark, GROOMING_LOG)
                last = session.scalar(select(func.max(MinorEvent.id))) or 0
                moved = move_mark(session, MinorsMark, GROOMING_LOG, mark.last_id if mark is not None else 0, last)


def check_sizes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--accounts`` and ``--history`` that the bench can draw from, or a one-line error."""
    if args.accounts < 2:
        parser.error("--accounts must be at least 2 (a check names an actor and a target)")
    if args.history < 0:
        parser.error("--history must be 0 or more")


def wait_until_serving(client: httpx.Client) -> None:
    """Until the server answers ``/status`` (it is starting in its own process)."""
    while True:
        try:
            if client.get("/status").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)


def phases(batches: int, rng: random.Random, accounts: list[str]) -> tuple[list[bytes], ...]:
    """The batches sent, as JSON bytes: 20 to warm up, then the three phases: ``batches`` random checks among
    ``accounts`` (about half denied), ``batches / 2`` of a feed among adults (all allowed: nothing written), and
    ``batches / 2`` with ten random checks among ninety between adults (a comment thread as a platform sends it)."""
    actions = [a.value for a in QUESTION_ACTIONS]
    bodies = []
    for _ in range(batches + 20):
        checks = []
        for _ in range(100):
            action = rng.choice(actions)
            actor, target = rng.sample(accounts, 2)
            check: dict[str, object] = {"actor": actor, "action": action, "context": {
                "follows": rng.random() < 0.5, "followed_by": rng.random() < 0.5}}
            if action not in {"live", "live_gift"}:
                check["target"] = target
            checks.append(check)
        bodies.append({"checks": checks})
    allowed = [{"checks": [{"actor": {"account_id": f"adult{i}", "age": 30}, "action": "comment",
                            "target": {"account_id": f"adult{i + 1}", "age": 40}} for i in range(100)]}
               for _ in range(batches // 2)]
    mixed = [{"checks": rng.sample(body["checks"], 10) + feed["checks"][:90]}
             for body, feed in zip(bodies[20:20 + batches // 2], allowed, strict=False)]
    return ([_encoded(b) for b in bodies[:20]], [_encoded(b) for b in bodies[20:]], [_encoded(b) for b in allowed],
            [_encoded(b) for b in mixed])


def _writes_workers(app: FastAPI, db: Database) -> list[Worker]:
    """The app's workers that follow a batch's writes, as the server runs them (``core/service.py``, ``web/app.py``;
    the others, which this endpoint neither feeds nor reads, stay off): SQLite's WAL checkpoint, so that no request's
    commit copies the WAL back, and the grooming watch, so that the work it took off the request path is still done
    (and its CPU counted)."""
    workers = [Worker(db.checkpoint, CHECKPOINT_SECONDS, "bench-wal-checkpoint")] if is_sqlite(db.engine) else []
    if watch_grooming is not None:
        minors, clock = app.state.minors, SystemClock()
        workers.append(Worker(lambda: watch_grooming(minors, now=clock.now()), Settings().minors_grooming_seconds,
                              "bench-grooming"))
    return workers


def _watched(db: Database, workers: bool, timeout: float = 60.0) -> None:
    """Wait until the grooming watch has taken in every event written (when it runs)."""
    if not workers or watch_grooming is None:
        return
    from sqlalchemy import func, select

    from bastion.minors.events import EventKind
    from bastion.minors.models import MinorEvent, MinorsMark

    watched = [EventKind.DENIED.value, EventKind.CONTACT.value]  # what the watch reads (not the cases it opens)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            mark = session.scalar(select(func.max(MinorsMark.last_id))) or 0
            if mark >= (session.scalar(select(func.max(MinorEvent.id)).where(MinorEvent.kind.in_(watched))) or 0):
                return
        time.sleep(0.1)
    log("the grooming watch did not catch up within a minute; measuring on")


def _encoded(body: Mapping[str, object]) -> bytes:
    """A batch's body as the JSON bytes sent: prepared before the clock starts, and not 100,000 objects that the
    server's garbage collector would walk in this shared process (a platform's client keeps them in its own)."""
    return json.dumps(body).encode()


def _serve(url: str, tmp: str, port: int, workers: bool) -> None:
    """The server's process: the app under uvicorn, with the workers that follow a batch's writes, on the server
    ``bastion serve`` runs (``core/serving.py``: the heap settled once started)."""
    db = Database(url)
    app = create_app(Settings(database_url=url, spool_dir=Path(tmp)), db=db, refresh=False)
    for worker in _writes_workers(app, db) if workers else []:
        worker.start()
    Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")).run()


def _cpu(pid: int | None) -> float:
    """CPU seconds of this process, plus the server's when it has its own."""
    own = time.process_time()
    return own if pid is None else own + process_cpu(pid)


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` has used so far (Linux's ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(client: httpx.Client, bodies: list[bytes], server_pid: int | None) -> tuple[list[float], float]:
    """Each batch's wall time (ms), and the CPU time per batch (ms: server, its workers and client together), which
    the load of a shared machine inflates far less than the wall time."""
    times = []
    cpu = _cpu(server_pid)
    headers = {"Content-Type": "application/json"}
    for body in bodies:
        start = time.perf_counter()
        client.post("/v1/interactions/check-batch", content=body, headers=headers).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return times, (_cpu(server_pid) - cpu) * 1000 / len(bodies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=300_000)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--without-workers", action="store_true", help="no WAL checkpoint or grooming watch beside "
                        "the server (the bench before 2026-12-06 evening)")
    parser.add_argument("--shared-process", action="store_true", help="the server in a thread of this process, "
                        "sharing its interpreter lock with the client (the bench before 2026-12-06 evening)")
    parser.add_argument("--accounts", type=int, default=PUT_ACCOUNTS, help="accounts the checks are drawn among "
                        f"(default {PUT_ACCOUNTS}: the friendliest case, every index leaf they touch in cache)")
    parser.add_argument("--history", type=int, default=0, help="past denies seeded before the measured batches "
                        "(a platform's event log; default none)")
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite in a "
                                                             "temporary directory)")
    args = parser.parse_args()
    check_sizes(parser, args)
    rng = random.Random(args.seed)
    rules = load_rules(DEFAULT_RULES_PATH)
    figures: dict[str, float | str] = {"rules": len(FLOOR) + len(rules.rules), "server": server_kind()}
    log("in process ...")
    figures |= in_process(rules, random_checks(args.decisions, rng))
    log(f"{figures}\nover HTTP ...")
    figures |= over_http(args.batches, rng, args.database_url, workers=not args.without_workers,
                         shared_process=args.shared_process, accounts=args.accounts, history=args.history)
    figures |= {"accounts": args.accounts, "history": args.history}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
