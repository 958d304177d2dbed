"""Upload intake: POST /v1/content with an image against a bank of random PDQ hashes.

Measures uploads per second and p50/p99 latency of the whole request (multipart parsing, spooling, hashing,
matching, policy, the transaction with its events), and, in the same process on the same images, the baseline:
hashing plus matching alone (`hash_path` + `Matcher.match`). The ratio shows what the rest of intake costs.

    python bench/intake.py [--bank-size 1000000] [--uploads 300] [--database-url postgresql://...]

One process, requests sent one after another through the ASGI app in process (no sockets), so one core does the
server's work. Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database, migrate
from bastion.demo.media import make_image
from bastion.hashing.services import hash_path
from bastion.matching import services as banks
from bastion.matching.matcher import Matcher, queries_for
from bastion.matching.models import Bank, BankChange, BankEntry, ChangeOp
from bastion.web.app import create_app


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def seed_bank(db: Database, size: int) -> None:
    """A bank of random PDQ hashes, inserted directly (the import path is measured elsewhere)."""
    admin = auth.Principal("cli", 0, "bench", Role.ADMIN)
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    rng = np.random.default_rng(7)
    with db.write() as session:
        bank_id = session.scalar(select(Bank.id).where(Bank.name == "TERRORIST_CONTENT"))
        now = time.time()
        for start in range(0, size, 50_000):
            values = rng.integers(0, 256, size=(min(50_000, size - start), 32), dtype=np.uint8)
            rows = [{"bank_id": bank_id, "signal_type": "pdq", "value": v.tobytes().hex(),
                     "value_digest": banks.value_digest(v.tobytes().hex()), "category": "terrorist_content",
                     "source": "bench", "note": "", "enabled": True, "added_by": "bench",
                     "added_at": SystemClock().now()} for v in values]
            session.connection().execute(insert(BankEntry.__table__), rows)  # type: ignore[arg-type]
        log(f"inserted {size:,} hashes in {time.time() - now:.1f} s")
        session.add(BankChange(op=ChangeOp.BANK.value, bank_id=bank_id, at=SystemClock().now()))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank-size", type=int, default=1_000_000)
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bastion-intake-"))
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    migrate(url)
    db = Database(url)
    seed_bank(db, args.bank_size)
    images = [make_image(work / f"upload{i}.jpg", seed=5000 + i, size=(960, 720)) for i in range(args.images)]

    matcher = Matcher(db)
    started = time.perf_counter()
    matcher.load()
    log(f"index loaded in {time.perf_counter() - started:.1f} s")
    settings = Settings(database_url=url, spool_dir=work)
    token = auth.create_token(db, role=Role.PLATFORM, name="bench", actor="bench")
    headers = {"Authorization": f"Bearer {token}"}

    # Baseline: hashing and matching alone, on the same images, in the same process.
    base: list[float] = []
    for i in range(args.uploads):
        t = time.perf_counter()
        matcher.match(queries_for(hash_path(images[i % len(images)])))
        base.append(time.perf_counter() - t)

    latencies: list[float] = []
    verdicts: dict[str, int] = {}
    with TestClient(create_app(settings, db=db, matcher=matcher, refresh=False)) as client:
        for i in range(args.uploads):
            path = images[i % len(images)]
            data = {"content_id": f"bench-{os.getpid()}-{i}", "account_id": f"acct-{i % 97}", "account_age": "29",
                    "account_country": "DE", "content_type": "image"}
            t = time.perf_counter()
            with path.open("rb") as f:
                response = client.post("/v1/content", data=data, files={"media": (path.name, f, "image/jpeg")},
                                       headers=headers)
            latencies.append(time.perf_counter() - t)
            if response.status_code != 200:
                raise SystemExit(f"upload {i} failed: {response.status_code} {response.text}")
            verdicts[response.json()["verdict"]] = verdicts.get(response.json()["verdict"], 0) + 1
    figures = {
        "database": db.engine.dialect.name,
        "bank_size": args.bank_size,
        "uploads": args.uploads,
        "uploads_per_s": round(len(latencies) / sum(latencies), 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "baseline_hash_match_per_s": round(len(base) / sum(base), 1),
        "baseline_p50_ms": round(statistics.median(base) * 1000, 2),
        "intake_cost_ratio": round(statistics.median(latencies) / statistics.median(base), 2),
        "verdicts": verdicts,
    }
    log(f"intake: {figures['uploads_per_s']} uploads/s, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms; "
        f"hash+match alone: {figures['baseline_hash_match_per_s']}/s; ratio {figures['intake_cost_ratio']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
