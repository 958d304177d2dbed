"""A real HTTP endpoint on loopback that records webhooks: the platform's side of the outbox, for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.factories.live import loopback


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers the scripted statuses first, then 200. Error answers echo the body back."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, n: int, status: int) -> None:
        with self.lock:
            self.script.extend([status] * n)

    def take(self, request: Request) -> int:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else 200

    def keys(self) -> list[str]:
        return [r.headers["Idempotency-Key"] for r in self.requests]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = self.server.receiver.take(Request(self.path, dict(self.headers.items()), body))
        reply = b"" if status < 300 else b"rejected: " + body
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving() -> Iterator[Receiver]:
    """A receiver on its own loopback port, for a test that needs a second endpoint (a partner and the platform)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    with loopback(server) as base:
        server.receiver = Receiver(url=f"{base}/hooks/bastion")
        yield server.receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving() as found:
        yield found
