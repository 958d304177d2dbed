"""Interaction checks over HTTP, this checkout against a baseline checkout, side by side on one machine.

On a shared machine whose speed drifts from one minute to the next, two benches run one after the other measure the
drift as much as the change. Here both checkouts' servers run at once, each in its own process with its own SQLite
file (or, with ``--database-urls``, its own PostgreSQL database) and its own workers (``bench/interactions.py``'s
``_serve``, imported from each checkout), and every batch is sent to both, one after the other, from one keep-alive
client per server, the order swapped on every batch. So both see the same moments of the machine; only the code
differs. The phases and batches are ``bench/interactions.py``'s (``phases``): about half denied, a feed among adults
(no deny), ten random checks among ninety between adults.

For each checkout: p50, p99 and max of a batch's wall time, and the server's CPU time per batch (its process: the
request, the event loop and the workers that follow the writes; not PostgreSQL's own); then this checkout's figure
over the baseline's.
Both servers share the cores, so absolute figures are higher than ``bench/interactions.py``'s alone; the ratios are
what this measures. The baseline must have ``bench/interactions.py: _serve(url, tmp, port, workers)`` (any checkout
since 2026-12-06 evening) and the same schema (the phases are separated by waiting for each grooming watch).

    python bench/interactions_paired.py --baseline /path/to/other/checkout [--batches 1000] [--seed 1]
                                        [--database-urls postgresql://.../a postgresql://.../b]
                                        [--accounts 500] [--history 0]

Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bastion.core.db import Database
from interactions import (
    AGES,
    PUT_ACCOUNTS,
    _watched,
    check_sizes,
    free_port,
    log,
    phases,
    process_cpu,
    record_ages,
    wait_until_serving,
)
from stats import percentile

HERE = Path(__file__).resolve().parent.parent

#: A server from one checkout: its own code migrates its file and makes the token, then serves as its bench does.
_SERVE = """
import sys
root, url, tmp, port = sys.argv[1:5]
sys.path[:0] = [root + "/src", root + "/bench"]
from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_token
from bastion.core.db import Database, migrate
migrate(url)
db = Database(url)
print(create_token(db, role=Role.PLATFORM, name="bench", actor="bench"), flush=True)
db.dispose()
import interactions
interactions._serve(url, tmp, int(port), True)
"""


class Served:
    """One checkout's server, and a client to it."""

    def __init__(self, name: str, root: Path, tmp: str, url: str = "") -> None:
        self.name, self.url, port = name, url or f"sqlite:///{tmp}/{name}.db", free_port()
        self.process = subprocess.Popen([sys.executable, "-c", _SERVE, str(root), self.url, tmp, str(port)],
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ""})
        assert self.process.stdout is not None
        token = self.process.stdout.readline().strip()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        wait_until_serving(self.client)
        self.times: list[float] = []

    def post(self, body: bytes) -> None:
        start = time.perf_counter()
        self.client.post("/v1/interactions/check-batch", content=body).raise_for_status()
        self.times.append((time.perf_counter() - start) * 1000)

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait()


def measure(servers: list[Served], bodies: list[bytes]) -> dict[str, dict[str, float]]:
    """Each body to every server, the order swapped on every batch; each server's wall times and CPU a batch."""
    cpu = {s.name: process_cpu(s.process.pid) for s in servers}
    for s in servers:
        s.times = []
    for i, body in enumerate(bodies):
        for s in servers if i % 2 == 0 else servers[::-1]:
            s.post(body)
    return {s.name: {"p50_ms": round(percentile(s.times, 0.5), 2), "p99_ms": round(percentile(s.times, 0.99), 2),
                     "max_ms": round(max(s.times), 2),
                     "server_cpu_ms": round((process_cpu(s.process.pid) - cpu[s.name]) * 1000 / len(bodies), 2)}
            for s in servers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the root of another checkout of Bastion")
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--accounts", type=int, default=PUT_ACCOUNTS, help="as bench/interactions.py's")
    parser.add_argument("--history", type=int, default=0, help="as bench/interactions.py's")
    parser.add_argument("--database-urls", nargs=2, metavar=("THIS", "BASELINE"), default=["", ""],
                        help="two empty PostgreSQL databases, one for each server (default: a SQLite file each)")
    args = parser.parse_args()
    check_sizes(parser, args)
    if not (args.baseline / "bench" / "interactions.py").is_file():
        parser.error(f"{args.baseline} is not a checkout of Bastion (no bench/interactions.py)")
    rng = random.Random(args.seed)
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        this, baseline = args.database_urls
        servers = [Served("this", HERE, tmp, this), Served("baseline", args.baseline.resolve(), tmp, baseline)]
        try:
            accounts = [f"acct{i}" for i in range(args.accounts)]
            years = [rng.choice(AGES) for _ in accounts]
            dbs = [Database(s.url) for s in servers]  # the same state in each server's database
            record_ages([(db, s.client) for db, s in zip(dbs, servers, strict=True)], accounts, years, args.history,
                        rng)
            for db in dbs:
                db.dispose()
            warm_up, *measured = phases(args.batches, rng, accounts)
            measure(servers, warm_up)
            for phase, bodies in zip(("half_denied", "no_deny", "few_denies"), measured, strict=True):
                log(f"{phase} ...")
                figures[phase] = result = measure(servers, bodies)
                result["ratio"] = {k: round(result["this"][k] / result["baseline"][k], 2)
                                   for k in ("p50_ms", "p99_ms", "server_cpu_ms")}
                for s in servers:  # each phase on its own traffic, not the last one's backlog
                    db = Database(s.url)
                    _watched(db, True)
                    db.dispose()
        finally:
            for s in servers:
                s.close()
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
