"""A real HTTP model host on loopback for the HTTP classifier: answers as scripted, records what it was sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.factories.live import loopback


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"scores": {}}'
    delay: float = 0.0
    #: Seconds between bytes of the body: a host that answers at once but trickles its answer.
    trickle: float = 0.0


@dataclass
class Host:
    """The next answers to give (then ``default``), and every request received (headers and body)."""

    url: str = ""
    default: Answer = field(default_factory=Answer)
    script: list[Answer] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int = 200, body: bytes | str = b'{"scores": {}}', delay: float = 0.0,
               trickle: float = 0.0) -> None:
        with self.lock:
            self.default = Answer(status, body.encode() if isinstance(body, str) else body, delay, trickle)

    def take(self, headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.requests.append((headers, body))
            return self.script.pop(0) if self.script else self.default


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    host: Host


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = self.server.host.take({k.lower(): v for k, v in self.headers.items()}, body)
        time.sleep(answer.delay)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if not answer.trickle:
                self.wfile.write(answer.body)
            for i in range(len(answer.body) if answer.trickle else 0):
                self.wfile.write(answer.body[i:i + 1])
                self.wfile.flush()
                time.sleep(answer.trickle)
        except OSError:  # the client gave up (a timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def host() -> Iterator[Host]:
    server = _Server(("127.0.0.1", 0), _Handler)
    with loopback(server) as base:
        server.host = Host(url=f"{base}/score")
        yield server.host
