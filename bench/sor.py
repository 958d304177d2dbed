"""Statements of reasons to the DSA Transparency Database, end to end, against a fake of it on loopback.

In one run, on a fresh SQLite database (WAL) in a temporary directory, with the fake database as its own process
(``bastion.testing.transparency_db``: uvicorn, token auth, every documented rule checked, a SQLite store):

- write ``--statements`` statements of reasons as moderation does (the statement row and its queue row in one
  transaction per statement, through ``Moderation.on_statement``'s hook);
- **Bastion**: one ``Submitter`` leases 100 due statements, scrubs and checks them, sends them in one
  ``POST /api/v1/statements`` and writes each outcome, until every statement is accepted;
- **baseline**: the same submitter with batches of 1, i.e. one POST per statement (``--baseline`` statements,
  issued with submission off and queued by ``backfill``, both timed).

``--submitters N`` runs N deliverers at once for the batches (threads sharing the database, as replicas would).

Every statement is then checked accepted here and created exactly once at the fake.

    python bench/sor.py [--statements 20000] [--baseline 1000] [--submitters 1]

Prints figures and the ratio against the baseline, then one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from bastion.core.clock import SystemClock
from bastion.core.db import Database, migrate
from bastion.moderation import statements
from bastion.moderation.models import StatementOfReasons
from bastion.moderation.policy import Action, Category
from bastion.transparency import submission
from bastion.transparency.sor_client import TransparencyClient
from bastion.transparency.sor_models import SorSubmission

TOKEN = "bench-token"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _issue(db: Database, n: int, prefix: str, *, queue: bool = True) -> float:
    """Write ``n`` statements as ``moderation.actions.issue_statement`` does, one transaction each (queued through
    ``Moderation.on_statement``'s hook, or not, as when submission is off); seconds taken."""
    clock = SystemClock()
    hook = submission.queue_hook(clock) if queue else None
    now = clock.now()
    start = time.perf_counter()
    for i in range(n):
        puid = f"{prefix}-{i:07d}"
        body = statements.build(puid=puid, category=Category.HATE_SPEECH, actions=[Action.REMOVE],
                                content_type="video", content_date=now.date(), decided_at=now,
                                facts=f"Reported by a user; acct-{i} posted it again after a warning.",
                                source_type=statements.Source.NOTICE, automated_detection=False,
                                automated_decision=False, territories=["DE", "FR"])
        with db.write() as session:
            session.add(StatementOfReasons(puid=puid, content_id=f"c-{i}", account_id=f"acct-{i}",
                                           decided_by="mod-1", body=body, created_at=now))
            if hook is not None:
                hook(session, puid)
    return time.perf_counter() - start


def _submit(db: Database, url: str, batch: int, submitters: int = 1) -> tuple[float, int]:
    """Run ``submitters`` deliverers (threads, as replicas would be) until nothing is due; seconds and requests."""
    requests: list[int] = []

    def run() -> None:
        sub = submission.Submitter(db, TransparencyClient(url, TOKEN), SystemClock(), batch_size=batch)
        made = 0
        while True:
            report = sub.round()
            if report.claimed == 0:
                break
            if report.error:
                raise SystemExit(f"submission failed: {report.error}")
            made += 1
        requests.append(made)

    start = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(submitters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, sum(requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=20_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--submitters", type=int, default=1, help="deliverers at once (threads), for the batches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url_db = f"sqlite:///{Path(tmp) / 'bastion.db'}"
        migrate(url_db)
        db = Database(url_db)
        port = _port()
        src = Path(__file__).resolve().parents[1] / "src"
        fake = subprocess.Popen([sys.executable, "-m", "bastion.testing.transparency_db", "--port", str(port),
                                 "--token", TOKEN, "--store", str(Path(tmp) / "fake.db")],
                                env={**os.environ, "PYTHONPATH": str(src)})
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/fake/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            issue_base = _issue(db, args.baseline, "base", queue=False)  # issued while submission was off
            start = time.perf_counter()
            submission.backfill(db, clock=SystemClock())
            backfill = time.perf_counter() - start
            send_base, req_base = _submit(db, base, 1)
            issue = _issue(db, args.statements, "sor")
            send, req = _submit(db, base, 100, args.submitters)
            receipts = httpx.get(f"{base}/fake/receipts", headers={"Authorization": f"Bearer {TOKEN}"},
                                 timeout=60).json()
        finally:
            fake.kill()
            fake.wait()
        with db.read() as session:
            accepted = session.scalar(select(func.count()).select_from(SorSubmission)
                                      .where(SorSubmission.state == "accepted"))
        total = args.statements + args.baseline
        created = receipts["created"]
        assert accepted == total, f"{accepted} of {total} accepted"
        assert len(created) == total and set(created.values()) == {1}, "a statement lost or doubled at the fake"
    rate, rate_base = args.statements / send, args.baseline / send_base
    figures = {
        "date": dt.date.today().isoformat(), "statements": args.statements, "baseline_statements": args.baseline,
        "submitters": args.submitters,
        "submitted_per_s": round(rate), "requests": req, "baseline_submitted_per_s": round(rate_base),
        "baseline_requests": req_base, "ratio": round(rate / rate_base, 1),
        "issued_per_s": round(args.statements / issue), "end_to_end_per_s": round(args.statements / (issue + send)),
        "issued_unqueued_per_s": round(args.baseline / issue_base), "backfill_per_s": round(args.baseline / backfill),
    }
    print(f"issued (statement + queue row, one transaction each): {figures['issued_per_s']:,}/s; without the queue "
          f"row {figures['issued_unqueued_per_s']:,}/s; backfill {figures['backfill_per_s']:,}/s")
    print(f"Bastion  batches of 100, {args.submitters} submitter(s): {args.statements:,} statements in {send:.2f} s, "
          f"{req} requests: "
          f"{figures['submitted_per_s']:,} statements/s submitted")
    print(f"baseline one POST each : {args.baseline:,} statements in {send_base:.2f} s, {req_base} requests: "
          f"{figures['baseline_submitted_per_s']:,} statements/s submitted")
    print(f"ratio {figures['ratio']}x; end to end (issue then submit) {figures['end_to_end_per_s']:,}/s; "
          f"all accepted, each created once at the fake")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
