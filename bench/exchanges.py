"""Exchange fetch: records a second pulled from a fake ThreatExchange on loopback into a bank, against a CSV import.

The fake Graph API (tests/factories/exchanges.py) serves ``--records`` PDQ indicators in pages of ``--page-size``;
``services.fetch`` pulls them with pytx's client and applies each page in one transaction (each entry with its
change-log row, audit entry and origin). The baseline, in this process on the same values: ``import_csv`` into
another bank (one transaction, batched inserts, one change-log row). Their ratio is what the exchange's per-record
bookkeeping (and HTTP, JSON and pytx) cost.

    python bench/exchanges.py [--records 2000] [--page-size 500] [--database-url postgresql://...]

Ends with one JSON line of figures.
"""

from __future__ import annotations

# isort: off
import bastion  # noqa: F401 - first: it limits BLAS threads before numpy loads (see bastion/__init__.py)
# isort: on
import argparse
import hashlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories.exchanges import TE_GROUP, TE_TOKEN, FakeThreatExchange, _TeHandler, _TeServer
from tests.factories.live import loopback

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.db import Database, migrate
from bastion.exchanges import services
from bastion.exchanges.interfaces import ExchangeKind
from bastion.matching import services as banks

ADMIN = Principal("cli", 0, "bench", Role.ADMIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        db = Database(url)
        values = [hashlib.sha256(f"bench{n}".encode()).hexdigest() for n in range(args.records)]
        server = _TeServer(("127.0.0.1", 0), _TeHandler)
        server.fake = FakeThreatExchange(page_size=args.page_size)
        for n, value in enumerate(values):
            server.fake.put(n + 1, value, time=1_760_000_000 + n)
        with loopback(server) as base:
            server.fake.base = base
            banks.create_bank(db, "FETCHED", actor=ADMIN)
            banks.create_bank(db, "IMPORTED", actor=ADMIN)
            services.add_exchange(db, services.NewExchange(
                "bench", ExchangeKind.THREATEXCHANGE, "FETCHED",
                settings={"privacy_group": TE_GROUP, "base_url": server.fake.url}, credentials_env="TX_ACCESS_TOKEN"),
                actor=ADMIN)
            started = time.perf_counter()
            result = services.fetch(db, "bench", actor=ADMIN, env={"TX_ACCESS_TOKEN": TE_TOKEN})
            fetch_s = time.perf_counter() - started
        csv = "signal_type,value,category\n" + "".join(f"pdq,{v},terrorism\n" for v in values)
        started = time.perf_counter()
        banks.import_csv(db, "IMPORTED", io.StringIO(csv), actor=ADMIN)
        import_s = time.perf_counter() - started
        assert result.added == args.records
        figures = {"records": args.records, "page_size": args.page_size, "database": url.split(":")[0],
                   "fetch_records_per_s": round(args.records / fetch_s), "baseline_csv_import_per_s":
                   round(args.records / import_s), "fetch_over_baseline": round(import_s / fetch_s, 3)}
        print(f"exchange fetch : {figures['fetch_records_per_s']:>8} records/s ({result.pages} pages)")
        print(f"CSV import     : {figures['baseline_csv_import_per_s']:>8} records/s (baseline)")
        print(f"fetch / import : {figures['fetch_over_baseline']}x")
        print(json.dumps(figures))
        db.dispose()


if __name__ == "__main__":
    main()
