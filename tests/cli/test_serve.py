"""Starting a server: a port in use is one line and a non-zero exit; what production still needs is said at start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.db import Database
from bastion.orders.wire import SigningKey
from tests.test_cli import bastion


@contextmanager
def _taken_port() -> Iterator[int]:
    """A port another program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize("command", [["serve"], ["hub", "serve"], ["centre", "serve"]])
def test_a_port_in_use_is_one_line_and_non_zero(db: Database, tmp_path: Path, command: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_HUB_SIGNING_KEY", SigningKey.generate().to_text())
    monkeypatch.setenv("BASTION_HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("BASTION_CENTRE_DATABASE_URL", f"sqlite:///{tmp_path / 'centre.db'}")
    monkeypatch.setenv("BASTION_CENTRE_FORWARD", "EUROPOL=https://le.example/europol")
    monkeypatch.setenv("BASTION_CENTRE_FORWARD_SECRET", "s3cret")
    with _taken_port() as port:
        r = bastion(db, *command, "--port", str(port))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"error: port {port} on 127.0.0.1 is in use (another server?): stop it or "
                                     "choose another with --port"]


def test_serve_says_what_production_still_needs_as_it_starts(db: Database, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "BASTION_DATABASE_URL": db.url, "CI": "true", "BASTION_MEDIA_KEY_FILE": str(tmp_path / "k")}
    server = subprocess.Popen([sys.executable, "-m", "bastion", "serve", "--port", str(port)], env=env,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert server.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Application startup complete" in line for line in lines):
            line = server.stderr.readline()
            if not line:
                break  # the server exited
            lines.append(line)
        said = "".join(lines)
        assert "Application startup complete" in said, said
        assert "BASTION_ORDERS_CONTACT_EMAIL" in said and "contact-point@example.invalid" in said
        assert "BASTION_WEBHOOK_SECRET" in said and "BASTION_SECURE_COOKIES" in said
        admin = auth.create_token(db, role=Role.ADMIN, name="operator", actor="test")
        status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=10,
                           headers={"Authorization": f"Bearer {admin}"}).json()
        assert "BASTION_ORDERS_CONTACT_EMAIL" in status["missing_settings"]
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("command", [["serve"], ["hub", "serve"], ["centre", "serve"]])
def test_every_server_command_runs_on_the_server_that_settles_the_heap(
        db: Database, tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``core/serving.py``'s ``serve``, not ``uvicorn.run``: the heap settled once started (test_serving.py)."""
    from fastapi import FastAPI
    from typer.testing import CliRunner

    from bastion.cli import app
    from bastion.core import serving

    served: list[tuple[object, str, int]] = []
    monkeypatch.setattr(serving, "serve", lambda application, *, host, port, **_: served.append((application, host,
                                                                                                port)))
    import uvicorn

    def not_this(*_: object, **__: object) -> None:
        raise AssertionError("uvicorn.run: a server whose heap is never settled")

    monkeypatch.setattr(uvicorn, "run", not_this)
    env = {"BASTION_DATABASE_URL": db.url, "BASTION_MEDIA_KEY_FILE": str(tmp_path / "k"),
           "BASTION_HUB_SIGNING_KEY": SigningKey.generate().to_text(),
           "BASTION_HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
           "BASTION_CENTRE_DATABASE_URL": f"sqlite:///{tmp_path / 'centre.db'}",
           "BASTION_CENTRE_FORWARD": "EUROPOL=https://le.example/europol", "BASTION_CENTRE_FORWARD_SECRET": "s3cret"}
    result = CliRunner().invoke(app, [*command, "--port", "0"], env=env)
    assert result.exit_code == 0, result.output
    assert len(served) == 1 and isinstance(served[0][0], FastAPI) and served[0][1:] == ("127.0.0.1", 0)
