"""A Bastion service under uvicorn, with the interpreter's garbage collector set for a server that runs for months.

CPython's cyclic collector runs a young collection every 700 allocations, and a full one, walking every object
alive, every hundred of those. A served app holds a million objects that live as long as the process (modules,
routes, schemas, the rules, the matcher's maps), and a batch of 100 interaction checks allocates about 20,000 more:
dozens of young collections a request carried its live objects into the old generation, and each full collection
stopped every thread for up to 120 ms, the worst tail of the minors API (``docs/benchmarks.md``, issue 11).

So, once the app has started: one collection, everything then alive moved out of the collector's sight
(``gc.freeze``: it is never garbage before the process ends), and young collections every ``GC_THRESHOLDS[0]``
allocations. A request's objects are mostly freed by their reference counts before a collection comes; a cycle is
still collected, later. Only the server commands do this: a test or a CLI command keeps CPython's defaults.
"""

from __future__ import annotations

import gc
import socket
from typing import Any

import uvicorn

#: (young, middle, old): allocations between young collections, then young collections between middle ones, and
#: middle ones between full ones. 50,000 objects take a young collection under 0.2 ms here.
GC_THRESHOLDS = (50_000, 20, 20)


def settle_heap() -> None:
    """Collect, freeze what is alive (the started app), and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Server(uvicorn.Server):
    """uvicorn's server, which settles the heap once the app's start (its lifespan) is done."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settle_heap()


def serve(app: Any, *, host: str, port: int, **config: Any) -> None:
    """``uvicorn.run`` for one app object, on ``Server``."""
    Server(uvicorn.Config(app, host=host, port=port, **config)).run()
