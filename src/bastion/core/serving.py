"""A Bastion service under uvicorn, with the interpreter's garbage collector set for a server that runs for months.

CPython's cyclic collector runs a young collection each time 700 more container objects are alive than at the last
one, and a full one, walking every object alive, after ten middle ones (once the objects that survived to the old
generation since the last full one are a quarter of it). A served app holds a quarter of a million objects that
live as long as the process (modules, routes, schemas, the rules, the matcher's maps), and a batch of 100
interaction checks makes tens of thousands more: a request's live objects were carried into the old generation, and
each full collection stopped every thread for up to 122 ms, the worst tail of the minors API (``docs/benchmarks.md``,
"Minors' tail").

So, once the app has started: one collection, everything then alive moved out of the collector's sight
(``gc.freeze``: it is never garbage before the process ends), and collections much rarer (``GC_THRESHOLDS``). The
freeze alone was tried before and dropped: with nothing left in the old generation, full collections came every few
hundred milliseconds. A request's objects are mostly freed by their reference counts before a collection comes; a
cycle is still collected, later. Only the server commands do this: a test or a CLI command keeps CPython's defaults.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

#: (young, middle, old): the growth of live container objects between young collections, then young collections
#: between middle ones, and middle ones between full ones. Young collections took at most 0.2 ms in the bench's
#: server (``gc.callbacks``), where most of a batch's objects are freed before one comes.
GC_THRESHOLDS = (50_000, 20, 20)


def settle_heap() -> None:
    """Collect, freeze what is alive (the started app), and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Server(uvicorn.Server):
    """uvicorn's server, which settles the heap once the app's start (its lifespan) is done."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        settle_heap()


def serve(app: Any, *, host: str, port: int, **config: Any) -> None:
    """``uvicorn.run`` for one app object, on ``Server``: Ctrl-C ends it quietly, a server that never started exits
    with uvicorn's code."""
    server = Server(uvicorn.Config(app, host=host, port=port, **config))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
