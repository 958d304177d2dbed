"""A fake DSA Transparency Database on loopback (in this process, or as a process a test can kill), and statements
of reasons written as moderation writes them."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.core.db import Database
from bastion.moderation import statements
from bastion.moderation.models import StatementOfReasons
from bastion.moderation.policy import Action, Category
from bastion.testing.transparency_db import FakeOptions, create_fake
from tests.factories.live import serve

TOKEN = "tdb-token"
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Fake:
    url: str
    token: str = TOKEN

    def receipts(self) -> dict[str, dict[str, int]]:
        answer = httpx.get(f"{self.url}/fake/receipts", headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    with serve(create_fake(FakeOptions(TOKEN, tmp_path / "fake-tdb.db")), health_path="/fake/health") as url:
        yield Fake(url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fake_process(store: Path, port: int, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """The fake as its own process (so it can die mid-batch); stopped afterwards if still alive."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen([sys.executable, "-m", "bastion.testing.transparency_db", "--port", str(port),
                                "--token", TOKEN, "--store", str(store), *options], env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fake/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("the fake Transparency Database did not start")
        time.sleep(0.05)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


AddStatements = Callable[..., list[str]]


@pytest.fixture
def add_statements(db: Database) -> AddStatements:
    """Write ``n`` statements as ``moderation.actions.issue_statement`` does; returns their puids in order."""
    def add(n: int, *, account_id: str = "acct-7", facts: str = "Matched a known hash of hate speech.",
            prefix: str = "sor", **overrides: Any) -> list[str]:
        now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
        puids = [f"{prefix}-{i:06d}" for i in range(n)]
        with db.write() as session:
            for puid in puids:
                body = statements.build(puid=puid, category=Category.HATE_SPEECH, actions=[Action.REMOVE],
                                        content_type="image", content_date=now.date(), decided_at=now, facts=facts,
                                        source_type=statements.Source.OWN_INITIATIVE, automated_detection=True,
                                        automated_decision=False)
                session.add(StatementOfReasons(puid=puid, content_id=f"c-{puid}", account_id=account_id,
                                               decided_by="mod-1", body={**body, **overrides}, created_at=now))
        return puids
    return add
