"""The grooming watch's round: CPU time in process, against a named baseline run on a copy of the same events.

The workload: ``--batches`` batches of 100 random checks (actions, follows and accounts drawn with ``--seed``) among
``--accounts`` accounts whose ages are given inline (11, 14, 16, 17, 25 or 40 years, as ``bench/interactions.py``
records them), decided and recorded by ``minors/interactions.py: check_all`` into a SQLite file, the app's clock
moved ``--seconds-per-batch`` after each: about half are denied, and the denies and contacts are the log the watch
follows. Then the file is copied, and the log is taken in by rounds of ``--per-round`` events, on one copy by
``watch_grooming`` (``batch=``), on the other by the baseline. With the default second a batch, a round's attempts
lie within a minute, as when the watch keeps up; ``--seconds-per-batch 180`` spreads 600 batches over 30 hours, so
that windows end inside the log and every round catches up on hours (``_passing_window``'s window by window path).

Two shapes of traffic: 500 accounts (``bench/interactions.py``'s: after a few rounds most adults' cases are open,
and their attempts are passed over), and 20,000 (a platform's: most attempters are new to the watch, few cases).

The baseline, **the round as a plain loop writes it**: each new deny and contact event's payload decoded here and
tested in Python, then every new attempter's window of events read and decoded, judged by the same functions
(``_passing_window``, ``grooming_due``), and its cases opened one by one with their events (the watch before
2026-12-07 read the first step's fields in the database, the rest alike). Both must open the same cases with the
same details (checked: account, reasons, counts and attempts listed). Figures: CPU ms per round (p50, max, total;
the first round, which compiles the statements, left out), and the baseline's total over the watch's.

    python bench/grooming_watch.py [--accounts 500 20000] [--batches 600] [--per-round 2500]
                                   [--seconds-per-batch 1] [--seed 1]

Run from the repository root with ``PYTHONPATH=src:bench``. Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.core.events import record
from bastion.core.serving import settle_heap
from bastion.minors import interactions
from bastion.minors.events import CaseOpened, EventKind
from bastion.minors.interactions import (
    AccountRef,
    Attempt,
    Check,
    Context,
    check_all,
    grooming_due,
    watch_grooming,
)
from bastion.minors.interfaces import ADULT_PLAUSIBLE, MINOR_BANDS, QUESTION_ACTIONS, SOLO_ACTIONS
from bastion.minors.models import MinorEvent, MinorsCase, MinorsMark
from bastion.minors.services import ACCOUNT_PREFIX, Minors
from bastion.web.app import create_app
from interactions import log
from stats import percentile

_WATCHED = [EventKind.DENIED.value, EventKind.CONTACT.value]
_MINORS = {b.value for b in MINOR_BANDS}
_ADULTS = {b.value for b in ADULT_PLAUSIBLE}


def minors_on(url: str, tmp: Path, clock: FrozenClock) -> Minors:
    """The app's minors service on ``url`` (its rules file), as the server builds it, on ``clock``."""
    app = create_app(Settings(database_url=url, spool_dir=tmp), db=Database(url), clock=clock, refresh=False)
    minors: Minors = app.state.minors
    return minors


def record_traffic(m: Minors, clock: FrozenClock, accounts: int, batches: int, seconds: float,
                   rng: random.Random) -> None:
    ages = {f"acct{i}": rng.choice([11, 14, 16, 17, 25, 40]) for i in range(accounts)}
    names, actions = list(ages), list(QUESTION_ACTIONS)
    for n in range(batches):
        checks = []
        for _ in range(100):
            action = rng.choice(actions)
            actor, target = rng.sample(names, 2)
            checks.append(Check(AccountRef(actor, ages[actor]), action,
                                None if action in SOLO_ACTIONS else AccountRef(target, ages[target]),
                                Context(follows=rng.random() < 0.5, followed_by=rng.random() < 0.5)))
        check_all(m, checks, actor="bench")
        clock.advance(seconds=seconds)
        if n % 100 == 99:
            log(f"  {n + 1} batches recorded")


def baseline_round(m: Minors, per_round: int) -> bool:
    """One round as a plain loop writes it (see the module's docstring); returns whether a full batch was read."""
    window = dt.timedelta(hours=m.rules.spec.grooming.window_hours)
    with m.db.read() as session:
        mark = session.get(MinorsMark, interactions.GROOMING_LOG)
        after = mark.last_id if mark is not None else 0
        rows = session.execute(select(MinorEvent.id, MinorEvent.subject, MinorEvent.kind, MinorEvent.at,
                                      MinorEvent.data)
                               .where(MinorEvent.id > after, MinorEvent.kind.in_(_WATCHED))
                               .order_by(MinorEvent.id).limit(per_round)).all()
        if not rows:
            return False
        oldest: dict[str, dt.datetime] = {}
        newest: dict[str, dt.datetime] = {}
        for _, subject, kind, at, data in rows:
            if _is_attempt(kind, data):
                account = subject.removeprefix(ACCOUNT_PREFIX)
                oldest[account] = min(at, oldest.get(account, at))
                newest[account] = max(at, newest.get(account, at))
        open_cases = set(session.scalars(select(MinorsCase.account_id).where(
            MinorsCase.kind == "grooming", MinorsCase.state == "open")))
        pending = set(newest) - open_cases
        found: dict[str, list[Attempt]] = {}
        if pending:
            since = min(oldest[a] for a in pending) - window
            for subject, kind, at, data in session.execute(
                    select(MinorEvent.subject, MinorEvent.kind, MinorEvent.at, MinorEvent.data).where(
                        MinorEvent.subject.in_([ACCOUNT_PREFIX + a for a in pending]),
                        MinorEvent.kind.in_(_WATCHED), MinorEvent.at >= since).order_by(MinorEvent.id)):
                if _is_attempt(kind, data):
                    denied = kind == EventKind.DENIED.value
                    found.setdefault(subject.removeprefix(ACCOUNT_PREFIX), []).append(Attempt(
                        at, data["action"], data["target"], "deny" if denied else "allow",
                        data["rule"] if denied else ""))
    due = grooming_due(m, {a: interactions._passing_window(m, attempts, oldest[a], newest[a], window)
                           for a, attempts in found.items()})
    with m.db.write() as session:
        now, spec = m.clock.now(), m.rules.spec.grooming
        for account, (reasons, detail) in sorted(due.items()):
            case = MinorsCase(account_id=account, kind="grooming", queue=spec.queue, state="open", detail=detail,
                              statement=None, opened_at=now, updated_at=now)
            session.add(case)
            session.flush()
            record(session, MinorEvent, subject=ACCOUNT_PREFIX + account, kind=EventKind.CASE_OPENED, actor="system",
                   at=now, data=CaseOpened(case_id=case.id, kind="grooming", queue=spec.queue,
                                           reason="; ".join(reasons)))
        session.merge(MinorsMark(log=interactions.GROOMING_LOG, last_id=rows[-1][0]))
    return len(rows) >= per_round


def _is_attempt(kind: str, data: dict[str, object]) -> bool:
    if data.get("target_band") not in _MINORS or not data.get("target"):
        return False
    return kind != EventKind.DENIED.value or data.get("actor_band") in _ADULTS


def rounds(run: Callable[[], bool]) -> list[float]:
    """Each round's CPU time (ms, this process: the database's work and ours) until the log is taken in, but the
    first's, which compiles the statements."""
    times = []
    more = True
    while more:
        start = time.process_time()
        more = run()
        times.append((time.process_time() - start) * 1000)
    return times[1:]


def cases(m: Minors) -> list[tuple[str, str]]:
    """The grooming cases opened: account and detail (reasons, counts, attempts listed), in a comparable order."""
    with m.db.read() as session:
        return sorted((c.account_id, json.dumps(c.detail, sort_keys=True))
                      for c in session.scalars(select(MinorsCase).where(MinorsCase.kind == "grooming")))


def one_shape(accounts: int, batches: int, per_round: int, seconds: float, rng: random.Random) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        here = Path(tmp)
        watched, baseline = here / "watch.db", here / "baseline.db"
        migrate(f"sqlite:///{watched}")
        clock = FrozenClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
        m = minors_on(f"sqlite:///{watched}", here, clock)
        log(f"{accounts} accounts: recording {batches} batches ...")
        record_traffic(m, clock, accounts, batches, seconds, rng)
        m.db.checkpoint()
        m.db.dispose()
        shutil.copyfile(watched, baseline)
        m, b = minors_on(f"sqlite:///{watched}", here, clock), minors_on(f"sqlite:///{baseline}", here, clock)
        with m.db.read() as session:
            events = len(session.scalars(select(MinorEvent.id).where(MinorEvent.kind.in_(_WATCHED))).all())
        log(f"  {events} deny and contact events; the watch ...")
        settle_heap()  # as the server does once started (core/serving.py): no full collection inside a round
        watch = rounds(lambda: watch_grooming(m, batch=per_round))
        log("  the baseline ...")
        plain = rounds(lambda: baseline_round(b, per_round))
        opened = cases(m)
        assert opened == cases(b), "the watch and the baseline opened different cases"
        figures = {"accounts": accounts, "events": events, "rounds": len(watch), "cases": len(opened),
                   "watch_round_cpu_p50_ms": round(percentile(watch, 0.5), 2),
                   "watch_round_cpu_max_ms": round(max(watch), 2), "watch_cpu_total_ms": round(sum(watch)),
                   "baseline_round_cpu_p50_ms": round(percentile(plain, 0.5), 2),
                   "baseline_round_cpu_max_ms": round(max(plain), 2), "baseline_cpu_total_ms": round(sum(plain)),
                   "speedup": round(sum(plain) / sum(watch), 2)}
        m.db.dispose()
        b.db.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[500, 20_000])
    parser.add_argument("--batches", type=int, default=600)
    parser.add_argument("--per-round", type=int, default=2500, help="deny and contact events a round takes in")
    parser.add_argument("--seconds-per-batch", type=float, default=1.0, help="the clock's step after each batch")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = []
    for accounts in args.accounts:
        figures = one_shape(accounts, args.batches, args.per_round, args.seconds_per_batch, random.Random(args.seed))
        log(json.dumps(figures))
        results.append(figures)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
