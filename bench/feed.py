"""The feed gate: candidates judged per second per core in process, and p99 of a 500-candidate request over HTTP.

A temporary SQLite database gets ``--items`` content items in a realistic mix (most published, some removed, held,
restricted, borderline, livestreams) written directly (intake is measured by bench/intake.py), with one moderation
event each. Then:

- in process, one thread: ``FeedGate.filter`` over feeds of 500 candidates (a tenth unknown ids), against the
  named baseline ``sql_per_candidate``: what a gate without the view does, one indexed lookup of the content's row
  per candidate (``moderation/queries.py: feed_facts`` of one id), in the same process on the same database; both
  per CPU-second of this process (one core);
- over HTTP: a uvicorn server (one process, the app as deployed) answers ``POST /v1/feed/filter`` with 500
  candidates from one keep-alive connection, sequentially; p50/p99 client side, and requests per server CPU-second.

    python bench/feed.py [--items 200000] [--feeds 400] [--requests 1000]

Ends with one JSON line of figures.
"""

from __future__ import annotations

# isort: off
import bastion  # noqa: F401 - first: it limits BLAS threads before numpy loads (see bastion/__init__.py)
# isort: on
import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.db import Database, migrate
from bastion.core.sealing import new_key
from bastion.feed.gate import FeedGate, Viewer
from bastion.feed.view import EligibilityView
from bastion.minors.interfaces import Band
from bastion.moderation import queries
from bastion.moderation.events import Submitted
from bastion.moderation.models import ContentItem, ModerationEvent
from intake import cpu_seconds, start_server
from stats import percentile

NOW = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
#: (status, restrictions, category, share): the mix of content a feed's candidates come from.
MIX = (("published", [], "", 0.80), ("removed", [], "terrorist_content", 0.04), ("blocked", [], "csam", 0.02),
       ("held", [], "hate_speech", 0.03), ("restricted", ["age_restrict"], "violent_extremism", 0.05),
       ("restricted", ["not_recommended"], "disinformation", 0.03), ("published", [], "borderline", 0.03))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: A valid payload: the transparency roll-up reads these events too, and a malformed one stops it.
SUBMITTED = Submitted(account_id="a", content_type="video", signals=0).model_dump(mode="json")


def seed(db: Database, items: int) -> list[str]:
    rng = random.Random(7)
    ids = [f"c{i}" for i in range(items)]
    weights = [m[3] for m in MIX]
    with db.write() as session:
        for start in range(0, items, 20_000):
            rows, events = [], []
            for content_id in ids[start:start + 20_000]:
                status, restrictions, category, _ = rng.choices(MIX, weights)[0]
                rows.append({"content_id": content_id, "account_id": "a", "uploader_age": 30.0,
                             "account_country": rng.choice(["FR", "DE", "IE"]), "content_type": "video",
                             "text": "", "url": "", "file_name": "", "signals": [], "verdict": "allow",
                             "status": status, "restrictions": restrictions, "category": category,
                             "live": rng.random() < 0.05, "views": 0, "shares": 0, "created_at": NOW,
                             "updated_at": NOW})
                events.append({"subject": f"content:{content_id}", "kind": "content.submitted", "actor": "bench",
                               "data": SUBMITTED, "at": NOW})
            session.execute(insert(ContentItem), rows)
            session.execute(insert(ModerationEvent), events)
    return ids


def feeds(ids: list[str], n: int, size: int = 500) -> list[list[str]]:
    rng = random.Random(11)
    return [[rng.choice(ids) if rng.random() > 0.1 else f"unknown-{rng.random()}" for _ in range(size)]
            for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--feeds", type=int, default=400)
    parser.add_argument("--baseline-feeds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bastion-feed-"))
    url = f"sqlite:///{work / 'bench.db'}"
    migrate(url)
    db = Database(url)
    started = time.perf_counter()
    ids = seed(db, args.items)
    log(f"seeded {args.items:,} content items in {time.perf_counter() - started:.1f} s")

    view = EligibilityView(db)
    started = time.perf_counter()
    view.load()
    load_s = time.perf_counter() - started
    gate = FeedGate(db, view)
    viewer = Viewer("bench", Band.B13_15)  # a minor: every reason is looked at
    batches = feeds(ids, args.feeds)
    gate.filter(viewer, batches[0])
    cpu = time.process_time()
    eligible = 0
    for batch in batches:
        eligible += len(gate.filter(viewer, batch).eligible)
    gate_cpu = time.process_time() - cpu
    gate_rate = args.feeds * 500 / gate_cpu

    # Baseline: one indexed lookup per candidate, then the same judgement (the view's entry_for).
    from bastion.feed.view import entry_for
    cpu = time.process_time()
    with db.read() as session:
        for batch in batches[:args.baseline_feeds]:
            for content_id in batch:
                found = queries.feed_facts(session, [content_id])
                if found:
                    entry_for(found[0])
    base_cpu = time.process_time() - cpu
    base_rate = args.baseline_feeds * 500 / base_cpu

    token = auth.create_token(db, role=Role.PLATFORM, name="bench", actor="bench")
    server, base_url = start_server(url, work, new_key())
    latencies: list[float] = []
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            bodies = [json.dumps({"viewer": {"account_id": "v", "age": 15}, "candidates": b}) for b in batches]
            for body in bodies[:50]:  # warm up
                client.post("/v1/feed/filter", content=body, headers={"Content-Type": "application/json"})
            cpu_before = cpu_seconds(server.pid)
            for i in range(args.requests):
                t = time.perf_counter()
                r = client.post("/v1/feed/filter", content=bodies[i % len(bodies)],
                                headers={"Content-Type": "application/json"})
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise SystemExit(f"request {i}: {r.status_code} {r.text}")
            server_cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {
        "items": args.items,
        "view_load_s": round(load_s, 2),
        "gate_candidates_per_cpu_s": round(gate_rate),
        "baseline_sql_per_candidate_per_cpu_s": round(base_rate),
        "ratio": round(gate_rate / base_rate, 1),
        "eligible_share": round(eligible / (args.feeds * 500), 3),
        "http_requests": args.requests,
        "http_candidates": 500,
        "http_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "http_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "http_requests_per_server_cpu_s": round(args.requests / server_cpu, 1),
    }
    log(f"feed gate: {figures['gate_candidates_per_cpu_s']:,} candidates per CPU-second in process; baseline "
        f"sql_per_candidate {figures['baseline_sql_per_candidate_per_cpu_s']:,}; ratio {figures['ratio']}; "
        f"HTTP 500 candidates p50 {figures['http_p50_ms']} ms, p99 {figures['http_p99_ms']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
