"""Removal orders end to end: N orders issued at once to the hub, carried to the platform, executed, answered.

Two uvicorn servers (the hub and the platform, each its own process and database, as deployed) run on loopback.
``--orders`` signed orders (one per content item, seeded directly in the platform's database) are posted to the hub
from ``--clients`` concurrent connections, all at once. For each order the time from the authority's request to the
hub recording the platform's Annex II feedback is measured (the hub's ``answered_at`` minus the moment the client
sent the order; both read the same machine's clock): p50, p99 and max. "None lost" is checked: every order executed
at the hub, every item removed once at the platform.

The baseline, in this process on its own database: signature verification plus the contact point's action alone
(``accept_signed`` + ``receive``: receipt, moderation actions, the feedback in the outbox), per order, sequential.
The ratio says how much longer an order waits end to end than the work it needs. Goal: every order answered
within 60 s (the law allows an hour).

    python bench/orders.py [--orders 1000] [--clients 32] [--database-url ... --hub-database-url ...]

Ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select

from bastion.core.clock import SystemClock
from bastion.core.db import Database, migrate
from bastion.hub import services as hub
from bastion.hub.models import HubOrder
from bastion.matching.matcher import Matcher
from bastion.moderation.kernel import Moderation
from bastion.moderation.models import ContentItem, ModerationEvent
from bastion.moderation.policy import DEFAULT_POLICY_PATH, load_policy
from bastion.orders import services as orders
from bastion.orders.interfaces import SenderRole
from bastion.orders.wire import AuthorityType, RemovalOrder, SigningKey, signed_request
from stats import percentile

CLOCK = SystemClock()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def content_url(i: int) -> str:
    return f"https://video.example/v/{i:06d}"


def seed_content(db: Database, n: int) -> None:
    """Published items the orders name, inserted directly (intake is measured by bench/intake.py)."""
    now = CLOCK.now()
    rows = [{"content_id": f"vid-{i:06d}", "account_id": f"acct-{i % 97}", "uploader_age": 30.0,
             "account_country": "FR", "content_type": "text", "text": "", "url": content_url(i), "signals": [],
             "verdict": "allow", "status": "published", "restrictions": [], "category": "", "views": 0,
             "shares": 0, "created_at": now, "updated_at": now} for i in range(n)]
    with db.write() as session:
        session.execute(insert(ContentItem), rows)


def order(i: int, contact_point: str, prefix: str = "FR") -> RemovalOrder:
    return RemovalOrder.model_validate({
        "reference": f"{prefix}-{i:06d}", "issuing_member_state": "FR", "addressee": "Bench Video Ltd",
        "contact_point": contact_point, "establishment_member_state": "IE", "issued_at": CLOCK.now().isoformat(),
        "urls": [content_url(i)], "reasons": "Incites to commit terrorist offences.", "material_types": ["incites"],
        "authority": {"type": "law_enforcement", "name": "OCLCTIC", "member_state": "FR",
                      "file_number": f"PN-{i}", "email": "tco@authority.example"},
        "follow_up_contact": "tco@authority.example",
        "redress": {"body": "Tribunal administratif de Paris", "deadline": "two months"}})


def baseline(workdir: Path, n: int) -> float:
    """Seconds per order for verification + the contact point's work alone, sequential, in this process."""
    url = f"sqlite:///{workdir / 'baseline.db'}"
    migrate(url)
    db = Database(url)
    seed_content(db, n)
    hub_key = SigningKey.generate()
    orders.trust_key(db, name="hub", role=SenderRole.HUB, public_key=hub_key.public_text, clock=CLOCK,
                     answer_url="http://127.0.0.1:9/v1/hub/answers")
    cp = orders.ContactPoint(Moderation(db, Matcher(db), load_policy(DEFAULT_POLICY_PATH), CLOCK))
    start = time.perf_counter()
    for i in range(n):
        body, headers = signed_request(hub_key, order(i, "http://127.0.0.1:9"), CLOCK.now())
        signed = orders.read_signed(db, headers, body, keys=cp.keys, clock=CLOCK, expect=orders.RECEIVED_TYPES,
                                    attested=True)
        assert orders.receive(cp, signed).state == "executed"
    per_order = (time.perf_counter() - start) / n
    db.dispose()
    return per_order


def start_server(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning", "--no-access-log"],
                            env={**os.environ, **env})


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/status", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not start")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--baseline-orders", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--hub-database-url", default="")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        log(f"baseline: verification + action alone, {args.baseline_orders} orders ...")
        base = baseline(workdir, args.baseline_orders)

        platform_url_db = args.database_url or f"sqlite:///{workdir / 'platform.db'}"
        hub_url_db = args.hub_database_url or f"sqlite:///{workdir / 'hub.db'}"
        for url in (platform_url_db, hub_url_db):
            migrate(url)
        platform_db, hub_db = Database(platform_url_db), Database(hub_url_db)
        seed_content(platform_db, args.orders)
        platform_port, hub_port = free_port(), free_port()
        platform, hub_base = f"http://127.0.0.1:{platform_port}", f"http://127.0.0.1:{hub_port}"
        platform_key, hub_key, authority_key = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
        orders.trust_key(platform_db, name="hub", role=SenderRole.HUB, public_key=hub_key.public_text, clock=CLOCK,
                         answer_url=f"{hub_base}/v1/hub/answers")
        hub.register_provider(hub_db, name="Bench Video Ltd", contact_point_url=platform, member_state="IE",
                              languages=["en"], public_keys=[platform_key.public_text], clock=CLOCK)
        token = hub.register_authority(hub_db, name="OCLCTIC", member_state="FR",
                                       authority_type=AuthorityType.LAW_ENFORCEMENT,
                                       public_keys=[authority_key.public_text], clock=CLOCK, actor="bench").token
        common = {"BASTION_SPOOL_DIR": str(workdir)}
        servers = [
            start_server("bastion.web.app:app_from_env", platform_port, {
                **common, "BASTION_DATABASE_URL": platform_url_db, "BASTION_ORDERS_SIGNING_KEY":
                platform_key.to_text(), "BASTION_MEDIA_KEY_FILE": str(workdir / "media.key")}),
            start_server("bastion.hub.app:hub_from_env", hub_port, {
                **common, "BASTION_HUB_DATABASE_URL": hub_url_db, "BASTION_HUB_SIGNING_KEY": hub_key.to_text()}),
        ]
        try:
            wait_up(platform)
            wait_up(hub_base)
            bodies = [signed_request(authority_key, order(i, platform), CLOCK.now()) for i in range(args.orders)]
            sent_at: dict[str, float] = {}
            client = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=args.clients))

            def issue(i: int) -> None:
                body, headers = bodies[i]
                t0 = time.time()
                r = client.post(f"{hub_base}/v1/hub/orders", content=body,
                                headers={**headers, "Authorization": f"Bearer {token}"})
                if r.status_code != 201:
                    raise SystemExit(f"order {i}: HTTP {r.status_code} {r.text[:200]}")
                sent_at[r.json()["hub_reference"]] = t0

            log(f"issuing {args.orders} orders from {args.clients} clients at once ...")
            started = time.time()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(issue, range(args.orders)))
            accepted = time.time() - started
            deadline = time.monotonic() + args.timeout
            answered: dict[str, dt.datetime] = {}
            while time.monotonic() < deadline and len(answered) < args.orders:
                with hub_db.read() as session:
                    answered = {ref: at for ref, at in session.execute(
                        select(HubOrder.hub_reference, HubOrder.answered_at).where(
                            HubOrder.answered_at.is_not(None), HubOrder.state == "executed"))}
                time.sleep(0.2)
            client.close()
        finally:
            for server in servers:
                server.terminate()
                server.wait(30)

        latencies = [answered[ref].timestamp() - t0 for ref, t0 in sent_at.items() if ref in answered]
        with platform_db.read() as session:
            removed = session.scalar(select(func.count()).select_from(ContentItem).where(
                ContentItem.status == "removed"))
            actions = session.scalar(select(func.count()).select_from(ModerationEvent).where(
                ModerationEvent.kind == "content.actions_applied"))
        lost = args.orders - len(latencies)
        p50, p99, worst = (percentile(latencies, q) for q in (0.5, 0.99, 1.0)) if latencies else (0.0, 0.0, 0.0)
        print(f"orders: {args.orders} issued at once from {args.clients} clients; all accepted by the hub in "
              f"{accepted:.1f} s")
        print(f"issue -> feedback recorded at the hub: p50 {p50:.2f} s, p99 {p99:.2f} s, max {worst:.2f} s "
              f"(mean {statistics.fmean(latencies) if latencies else 0:.2f} s)")
        print(f"none lost: {lost == 0} (answered {len(latencies)}, removed {removed}, actions {actions})")
        print(f"baseline (verify + receive + act, sequential, one process): {base * 1000:.2f} ms per order; "
              f"{args.orders} orders of pure work = {base * args.orders:.1f} s")
        print(f"ratio: max end-to-end / pure work for all orders = {worst / (base * args.orders):.2f}x; "
              f"goal every order within 60 s: {'met' if latencies and worst <= 60 and lost == 0 else 'NOT met'}")
        print(json.dumps({"orders": args.orders, "clients": args.clients, "p50_s": round(p50, 3),
                          "p99_s": round(p99, 3), "max_s": round(worst, 3), "lost": lost, "removed": removed,
                          "actions": actions, "baseline_ms_per_order": round(base * 1000, 3),
                          "accepted_s": round(accepted, 2)}))
        platform_db.dispose()
        hub_db.dispose()


if __name__ == "__main__":
    main()
