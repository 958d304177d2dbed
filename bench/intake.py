"""Upload intake: POST /v1/content with an image against a bank of random PDQ hashes, over real HTTP.

A uvicorn server (one process, the app as deployed) is started on loopback; the bench sends uploads from
``--clients`` concurrent connections and measures, client side, uploads per second and p50/p99 latency of the whole
request (multipart parsing, spooling, hashing, matching, policy, the transaction with its events), and, server side,
the CPU time the server used: uploads per server CPU-second is the "per core" figure. The baseline, in this process
on the same images: hashing plus matching alone (`hash_path` + `Matcher.match`), per CPU-second. Their ratio shows
what the rest of intake costs.

    python bench/intake.py [--bank-size 1000000] [--uploads 1000] [--clients 4] [--database-url postgresql://...]

Ends with one JSON line of figures.
"""

from __future__ import annotations

# isort: off
import bastion  # noqa: F401 - first: it limits BLAS threads before numpy loads (see bastion/__init__.py)
# isort: on
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import insert, select

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.clock import SystemClock
from bastion.core.db import Database, migrate
from bastion.core.sealing import new_key
from bastion.demo.media import make_image
from bastion.hashing.services import hash_path
from bastion.matching import services as banks
from bastion.matching.matcher import Matcher, queries_for
from bastion.matching.models import Bank, BankChange, BankEntry, ChangeOp
from stats import percentile


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



def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its threads, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(url: str, work: Path, media_key: str) -> tuple[subprocess.Popen[bytes], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "BASTION_DATABASE_URL": url, "BASTION_SPOOL_DIR": str(work), "BASTION_MEDIA_KEY": media_key}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bastion.web.app:app_from_env", "--port", str(port),
         "--log-level", "warning", "--no-access-log"], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/status", timeout=2).json()["status"] == "ok":
                return server, base
        except (httpx.TransportError, ValueError):
            pass
        if server.poll() is not None:
            raise SystemExit("the server exited while starting")
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready")


def upload_all(base: str, headers: dict[str, str], images: list[tuple[str, bytes]], uploads: int,
               clients: int, prefix: str = "bench", content_type: str = "image"
               ) -> tuple[list[float], dict[str, int], float]:
    """Send ``uploads`` uploads over ``clients`` keep-alive connections; latencies, verdict counts, wall time."""
    latencies: list[float] = []
    verdicts: dict[str, int] = {}
    lock = threading.Lock()
    pending = iter(range(uploads))
    mime = "video/mp4" if content_type == "video" else "image/jpeg"

    def worker() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while True:
                with lock:
                    i = next(pending, None)
                if i is None:
                    return
                name, body = images[i % len(images)]
                data = {"content_id": f"{prefix}-{os.getpid()}-{i}", "account_id": f"acct-{i % 97}",
                        "account_age": "29", "account_country": "DE", "content_type": content_type}
                t = time.perf_counter()
                response = client.post("/v1/content", data=data, files={"media": (name, body, mime)})
                elapsed = time.perf_counter() - t
                if response.status_code != 200:
                    raise SystemExit(f"upload {i} failed: {response.status_code} {response.text}")
                verdict = response.json()["verdict"]
                with lock:
                    latencies.append(elapsed)
                    verdicts[verdict] = verdicts.get(verdict, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, verdicts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank-size", type=int, default=1_000_000)
    parser.add_argument("--uploads", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bastion-intake-"))
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    migrate(url)
    db = Database(url)
    seed_bank(db, args.bank_size)
    paths = [make_image(work / f"upload{i}.jpg", seed=5000 + i, size=(960, 720)) for i in range(args.images)]
    images = [(p.name, p.read_bytes()) for p in paths]

    # Baseline: hashing and matching alone, on the same images, in this process, one thread.
    matcher = Matcher(db)
    matcher.load()
    warm = [matcher.match(queries_for(hash_path(p))) for p in paths]
    assert len(warm) == len(paths)
    cpu = time.process_time()
    base: list[float] = []
    for i in range(min(args.uploads, 500)):
        t = time.perf_counter()
        matcher.match(queries_for(hash_path(paths[i % len(paths)])))
        base.append(time.perf_counter() - t)
    base_cpu = time.process_time() - cpu
    del matcher

    token = auth.create_token(db, role=Role.PLATFORM, name="bench", actor="bench")
    server, base_url = start_server(url, work, new_key())
    try:
        headers = {"Authorization": f"Bearer {token}"}
        upload_all(base_url, headers, images, min(100, args.uploads), args.clients, prefix="warm")  # warm up (own ids)
        cpu_before = cpu_seconds(server.pid)
        latencies, verdicts, wall = upload_all(base_url, headers, images, args.uploads, args.clients)
        server_cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {
        "database": db.engine.dialect.name,
        "bank_size": args.bank_size,
        "uploads": args.uploads,
        "clients": args.clients,
        "uploads_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "server_cpu_s": round(server_cpu, 2),
        "uploads_per_server_cpu_s": round(len(latencies) / server_cpu, 1),
        "baseline_hash_match_per_cpu_s": round(len(base) / base_cpu, 1),
        "baseline_p50_ms": round(statistics.median(base) * 1000, 2),
        "intake_cost_ratio": round((server_cpu / len(latencies)) / (base_cpu / len(base)), 2),
        "verdicts": verdicts,
    }
    log(f"intake: {figures['uploads_per_s']} uploads/s over {args.clients} connections, p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms; {figures['uploads_per_server_cpu_s']} uploads per server CPU-second; "
        f"hash+match alone: {figures['baseline_hash_match_per_cpu_s']} per CPU-second; "
        f"ratio {figures['intake_cost_ratio']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
