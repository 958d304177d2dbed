"""The server commands settle the heap once the app has started: everything alive then frozen out of the cyclic
collector's walks, and young collections less often (``core/serving.py``). In a child process: freezing this test
process's heap would keep every later test's garbage."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from bastion.core.serving import GC_THRESHOLDS

_CHILD = textwrap.dedent("""
    import gc, json, socket, sys, threading, time
    import uvicorn
    from fastapi import FastAPI
    from bastion.core.serving import Server

    from contextlib import asynccontextmanager

    class Started:
        pass

    made = []

    @asynccontextmanager
    async def lifespan(app):
        made.append(Started())  # made by the app's start: alive for the process's life
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    def root() -> dict[str, int]:
        return {}

    before = {"frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while (not server.started or not gc.get_freeze_count()) and time.monotonic() < deadline:
        thread.join(0.01)  # uvicorn says started just before the heap is settled
    after = {"frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold(),
             "start_frozen": bool(made) and not any(o is made[0] for o in gc.get_objects())}
    server.should_exit = True
    thread.join(10)
    print(json.dumps({"before": before, "after": after}))
""")


def test_a_started_server_has_frozen_its_heap_and_collects_young_objects_less_often() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"]["frozen"] == 0 and tuple(seen["before"]["thresholds"]) != GC_THRESHOLDS
    assert seen["after"]["frozen"] > 10_000  # modules, the app, uvicorn: all alive for the process's life
    assert tuple(seen["after"]["thresholds"]) == GC_THRESHOLDS
    assert seen["after"]["start_frozen"]  # settled after the lifespan: what the start made is frozen too
