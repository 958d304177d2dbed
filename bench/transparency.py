"""Transparency: the DSA report and the dashboard's figures from the roll-ups, against a plain scan of the events.

Two parts, on a temporary SQLite database (or ``--url``, an empty PostgreSQL database):

1. Real events: ``--decisions`` actions written as moderation writes them (``testing/transparency.py``: 90 % blocked
   at upload by a hash match, 7 % held and removed by a moderator, 3 % removed on a notice; ``--uploads-per-decision``
   clean uploads each), over 182 days. Timed: the roll-up worker catching up (events per second), then the full DSA
   report from the roll-ups against the named baseline, **the same report from a plain scan of the event logs**
   (``metrics.direct_cells``: every event read and judged now). Both reports are asserted equal.
2. Scale: roll-up rows standing for ``--synthetic`` decisions over 182 days (``--cells-per-day`` distinct cells a
   day, random dimensions), written straight into ``transparency_rollups``, and the monthly and daily cuts summed
   from them as the worker would have kept them (``rollups.rebuild_cuts``); on PostgreSQL the tables are then
   analysed, as autovacuum would have done over the months they stand for. Timed: the full DSA report for the
   half-year, the API's query (``/v1/transparency/metrics``: one calendar month, a year, and a rolling 30 days
   across two months; ungrouped, by Member State and by category), and the console dashboard's page
   (``/console/transparency``, the same three periods, by category and by Member State) over HTTP as an analyst gets
   it. Each against the named baseline: **the same answer from the daily rows alone** (``rollups.CUTS`` and
   ``rollups.DAY_CUTS`` emptied: no cut read). Then a researcher's query (one closed month, small counts hidden)
   read from the month's release, against **the release cut on every query** (the first query, which makes it).

    python bench/transparency.py [--decisions 20000] [--synthetic 10000000] [--cells-per-day 3000] [--url URL]

On PostgreSQL, ``--url`` must name an empty database (drop and create it between runs).

Prints figures and the ratio, then one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select, text

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.testing.transparency import Scenario
from bastion.transparency import dashboard, metrics, releases, reports, rollups
from bastion.transparency.metrics import CELL_COLUMNS, Dimension
from bastion.transparency.models import Cut, DayCut, Rollup
from bastion.web.app import create_app

PASSWORD = "bench password, long enough"

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAYS = 182
END = (START + dt.timedelta(days=DAYS - 1)).date()
COUNTRIES = ["DE", "FR", "IT", "ES", "PL", "NL", "BE", "RO", "SE", "AT", "CZ", "PT", "GR", "HU", "DK", "FI", "IE"]
LANGUAGES = ["de", "fr", "it", "es", "pl", "nl", "ro", "sv", "cs", "pt", "el", "hu", "da", "fi", "en"]
CATEGORIES = ["csam", "terrorist_content", "hate_speech", "violent_extremism", "disinformation", "borderline"]


def write_events(db: Database, decisions: int, uploads_per_decision: int, seed: int) -> int:
    rng = random.Random(seed)
    scenario, written = Scenario(), 0
    for i in range(decisions):
        at = START + dt.timedelta(seconds=rng.randrange(DAYS * 86400 - 86400 * 3))
        where = {"country": rng.choice(COUNTRIES), "language": rng.choice(LANGUAGES),
                 "content_type": rng.choice(["video", "image", "text"])}
        category = rng.choice(CATEGORIES)
        roll = rng.random()
        if roll < 0.9:
            scenario.block_at_upload(f"d{i}", at, category=category, **where)
        elif roll < 0.97:
            scenario.upload(f"d{i}", at, verdict="review", category=category, **where)
            scenario.review(f"d{i}", at, at + dt.timedelta(minutes=rng.randrange(10, 3000)), reason="upload",
                            category=category)
        else:
            scenario.upload(f"d{i}", at, **where)
            notice = at + dt.timedelta(minutes=rng.randrange(1, 600))
            scenario.notice(f"d{i}", notice, category=category, trusted=rng.random() < 0.3)
            scenario.review(f"d{i}", notice, notice + dt.timedelta(minutes=rng.randrange(5, 2000)),
                            reason="notice", category=category)
        for j in range(uploads_per_decision):
            scenario.upload(f"c{i}-{j}", at + dt.timedelta(seconds=j), **where)
        if i % 2000 == 1999:
            written += sum(len(v) for v in scenario.events.values())
            with db.write() as session:
                scenario.flush(session)
    written += sum(len(v) for v in scenario.events.values())
    with db.write() as session:
        scenario.flush(session)
    return written


def synthetic_rollups(db: Database, decisions: int, cells_per_day: int, seed: int) -> int:
    """Roll-up rows standing for ``decisions`` actions (and 100 uploads each) over the half-year."""
    rng = random.Random(seed)
    per_day = decisions // DAYS
    buckets = sorted({metrics.bucket(rng.lognormvariate(8, 2.5)) for _ in range(400)})
    rows = 0
    for day in range(DAYS):
        date = (START + dt.timedelta(days=day)).date()
        cells: dict[tuple[object, ...], int] = {}
        for _ in range(cells_per_day):
            source = rng.choice(["hash_match", "hash_match", "classifier", "user_notice", "trusted_flagger",
                                 "authority_order", "referral"])
            path = "automated" if source in ("hash_match", "authority_order") else (
                "partly_automated" if source == "classifier" else "human")
            key = (date, "action", rng.choice(CATEGORIES), rng.choice(COUNTRIES), "",
                   rng.choice(["video", "image", "text"]), rng.choice(LANGUAGES), source, path,
                   rng.choice(["remove", "remove", "remove", "age_restrict", "demote", "label"]),
                   source in ("hash_match", "classifier"), source == "hash_match",
                   0 if source == "hash_match" else rng.choice(buckets))
            cells[key] = cells.get(key, 0) + 1
        for country in COUNTRIES:
            for language in LANGUAGES[:3]:
                cells[(date, "upload", "", country, "", "video", language, "", "", "", False, False, -1)] = 1
        scale = per_day / sum(n for k, n in cells.items() if k[1] == "action")
        batch = [{**dict(zip(CELL_COLUMNS, key, strict=True)),
                  "count": max(1, round(n * (scale if key[1] == "action" else per_day * 100 / (len(COUNTRIES) * 3)))),
                  "items": 1} for key, n in cells.items()]
        with db.write() as session:
            session.execute(insert(Rollup), batch)
        rows += len(batch)
    return rows


def timed(fn: object, runs: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


class Baseline:
    """Within it, no cut is read (``rollups.CUTS`` and ``rollups.DAY_CUTS`` emptied): every query sums the daily
    rows."""

    def __enter__(self) -> None:
        self.saved = dict(rollups.CUTS), dict(rollups.DAY_CUTS)
        rollups.CUTS.clear()
        rollups.DAY_CUTS.clear()

    def __exit__(self, *_: object) -> None:
        rollups.CUTS.update(self.saved[0])
        rollups.DAY_CUTS.update(self.saved[1])


def both(name: str, fn: object, runs: int = 5) -> dict[str, int]:
    """``fn`` timed with the monthly cuts and against the baseline (daily rows alone); median of ``runs``."""
    ours, _ = timed(fn, runs=runs)
    with Baseline():
        base, _ = timed(fn, runs=runs)
    print(f"{name}: {ours * 1000:.0f} ms; baseline (daily rows alone) {base * 1000:.0f} ms; {base / ours:.1f}x "
          f"(median of {runs})")
    key = name.split(":")[0].replace(" ", "_").replace(",", "")
    return {f"{key}_ms": round(ours * 1000), f"{key}_baseline_ms": round(base * 1000)}


def api_queries(db: Database, first: dt.date) -> dict[str, int]:
    """What ``/v1/transparency/metrics`` reads and computes, for each period and grouping."""
    out: dict[str, int] = {}
    for label, start, end in periods(first):
        for by in (None, Dimension.COUNTRY, Dimension.CATEGORY):
            def query(start: dt.date = start, end: dt.date = end, by: Dimension | None = by) -> object:
                with db.read() as session:
                    return metrics.figures(rollups.grouped(session, start, end, by), by)

            out.update(both(f"api {label} {by.value if by else 'ungrouped'}: {start}..{end}", query,
                            runs=3 if label == "year" else 5))
    return out


def researcher_queries(db: Database, first: dt.date) -> dict[str, int]:
    """What ``/v1/transparency/metrics`` does for a researcher (one closed month, small counts hidden): the month's
    check that it is closed and counted, and its release read (``releases.release``); against the named baseline,
    **the release cut on every query** (``metrics.suppress_period``, as each query did before releases), timed as
    the first query, which makes and keeps it."""
    k = Settings().transparency_min_cell
    clock = FrozenClock(dt.datetime.combine(END + dt.timedelta(days=40), dt.time(), tzinfo=dt.UTC))
    end = releases.month_end(first)
    cut, _ = timed(lambda: releases.release(db, first, k, clock))
    out = {"researcher_release_month_ms": round(cut * 1000)}
    print(f"researcher release of {first:%Y-%m} (cut once, kept): {cut * 1000:.0f} ms")
    for by in (None, Dimension.COUNTRY, Dimension.CATEGORY):
        def query(by: Dimension | None = by) -> object:
            with db.read() as session:
                assert releases.is_kept(session, first, k) or releases.closed(session, end, clock.now())
            return releases.release(db, first, k, clock).answers[by]

        ours, _ = timed(query, runs=5)
        name = f"api month {by.value if by else 'ungrouped'} as a researcher"
        print(f"{name}: {ours * 1000:.0f} ms; baseline (the release cut on every query) {cut * 1000:.0f} ms; "
              f"{cut / ours:.1f}x (median of 5)")
        out[f"{name.replace(' ', '_')}_ms"] = round(ours * 1000)
    return out


def periods(first: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """A calendar month, a year (whole months), and 30 days across two months (partly from the daily rows)."""
    return [("month", first, first.replace(day=31)), ("year", first, first.replace(month=12, day=31)),
            ("30 days", first.replace(day=15), first.replace(month=2, day=13))]


def console_page(url: str, db: Database, tmp: Path, first: dt.date) -> dict[str, int]:
    """The console dashboard's answer (all six charts: the reads of the roll-ups, the SVG, the audit row), over HTTP
    as an analyst sees it, and its reads alone (``dashboard.build``); median of 5 each."""
    from fastapi.testclient import TestClient

    create_user(db, username="bench", password=PASSWORD, role=Role.ANALYST, actor="bench")
    app = create_app(Settings(database_url=url, spool_dir=tmp), db=db, refresh=False)
    with TestClient(app) as client:
        form = client.get("/login").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"csrf_token": token, "username": "bench", "password": PASSWORD})
        out: dict[str, int] = {}
        for label, start, end in periods(first):
            for by in ("category", "country"):
                def read(by: str = by, start: dt.date = start, end: dt.date = end) -> object:
                    with db.read() as session:
                        return dashboard.build(session, dashboard.Filters(start, end, Dimension(by)), None)

                def get(by: str = by, start: dt.date = start, end: dt.date = end) -> object:
                    answer = client.get("/console/transparency",
                                        params={"from": start.isoformat(), "to": end.isoformat(), "by": by})
                    assert answer.status_code == 200 and "Actions by" in answer.text, answer.status_code
                    return answer

                runs = 3 if label == "year" else 5
                out.update(both(f"console page {label} by {by}: {start}..{end}", get, runs))
                out.update(both(f"console reads {label} by {by}: {start}..{end}", read, runs))
    create_user(db, username="bench-researcher", password=PASSWORD, role=Role.RESEARCHER, actor="bench")
    with TestClient(app) as client:  # a researcher's page: the month's release (made above) and the cut reads
        form = client.get("/login").text
        token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"csrf_token": token, "username": "bench-researcher", "password": PASSWORD})
        for by in ("category", "country"):
            def researcher(by: str = by) -> object:
                answer = client.get("/console/transparency", params={
                    "from": first.isoformat(), "to": releases.month_end(first).isoformat(), "by": by})
                assert answer.status_code == 200 and "Actions by" in answer.text, answer.status_code
                return answer

            took, _ = timed(researcher, runs=5)
            print(f"console page month by {by} as a researcher (released): {took * 1000:.0f} ms (median of 5)")
            out[f"console_page_month_by_{by}_researcher_ms"] = round(took * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--uploads-per-decision", type=int, default=2)
    parser.add_argument("--synthetic", type=int, default=10_000_000)
    parser.add_argument("--cells-per-day", type=int, default=3000)
    parser.add_argument("--url", help="an empty PostgreSQL database (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        db = Database(url)
        figures: dict[str, object] = {"database": db.engine.dialect.name, "decisions": args.decisions}

        began = time.perf_counter()
        events = write_events(db, args.decisions, args.uploads_per_decision, seed=1)
        figures["events"] = events
        print(f"wrote {events:,} events for {args.decisions:,} decisions in {time.perf_counter() - began:.1f} s")
        rolled, _ = timed(lambda: rollups.catch_up(db))
        figures["rollup_events_per_s"] = round(events / rolled)
        print(f"roll-up worker: caught up in {rolled:.2f} s ({events / rolled:,.0f} events/s)")
        config = reports.ReportConfig(provider="Bench", service="Bench")
        first = START.date()

        def from_rollups() -> object:
            with db.read() as session:
                return reports.dsa_report(rollups.cells_for(session, first, END), first, END, config, today=END)

        def from_scan() -> object:
            with db.read() as session:
                cells = metrics.direct_cells(session, first, END)
            return reports.dsa_report(reports.from_cells(cells), first, END, config, today=END)

        ours, report = timed(from_rollups, runs=3)
        base, scanned = timed(from_scan)
        assert report == scanned, "the roll-ups and the scan disagree"
        figures.update(report_rollups_s=round(ours, 3), report_scan_s=round(base, 3), ratio=round(base / ours, 1))
        print(f"DSA report, {args.decisions:,} decisions: roll-ups {ours * 1000:.0f} ms; baseline (plain scan of the "
              f"events) {base * 1000:.0f} ms; {base / ours:.1f}x")

        with db.write() as session:
            session.execute(Rollup.__table__.delete())
        began = time.perf_counter()
        rows = synthetic_rollups(db, args.synthetic, args.cells_per_day, seed=2)
        took = time.perf_counter() - began
        print(f"synthetic roll-ups: {rows:,} rows for {args.synthetic:,} decisions in {took:.1f} s")
        cut, _ = timed(lambda: rollups.rebuild_cuts(db))
        if db.engine.dialect.name == "postgresql":  # the planner's statistics, as autovacuum keeps them
            with db.write() as session:
                session.execute(text("ANALYZE"))
        with db.read() as session:
            counted = int(session.scalar(select(func.sum(Rollup.count)).where(Rollup.metric == "action")) or 0)
            cut_rows = int(session.scalar(select(func.count()).select_from(Cut)) or 0)
            day_rows = int(session.scalar(select(func.count()).select_from(DayCut)) or 0)
        print(f"cuts: {cut_rows:,} monthly and {day_rows:,} daily rows summed from the daily rows in {cut:.1f} s")
        big, _ = timed(from_rollups)
        figures.update(synthetic_decisions=counted, rollup_rows=rows, cut_rows=cut_rows, day_cut_rows=day_rows,
                       report_10m_s=round(big, 3))
        print(f"DSA report, {counted:,} decisions over {DAYS} days from {rows:,} roll-up rows: {big:.2f} s")
        figures.update(api_queries(db, first))
        figures.update(researcher_queries(db, first))
        figures.update(console_page(url, db, Path(tmp), first))
        db.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
