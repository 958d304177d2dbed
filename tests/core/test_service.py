"""The service kernel every app is built on: headers, problems, body limit, /status sections, workers' life."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from bastion import __version__
from bastion.core.auth.roles import Role
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database, is_sqlite
from bastion.core.http import SECURITY_HEADERS, Problem
from bastion.core.production import Service
from bastion.core.service import Health, ServiceSpec, create_service
from bastion.core.worker import Rounds, Worker
from tests.factories.waiting import until


class Recorder:
    def __init__(self, name: str, log: list[str], *, refuse: bool = False) -> None:
        self.name, self.log, self.refuse = name, log, refuse

    def start(self) -> None:
        if self.refuse:
            raise RuntimeError(f"{self.name} refuses to start")
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")

    @property
    def rounds(self) -> Rounds:
        return Rounds(self.name)


router = APIRouter()


@router.post("/echo")
def echo() -> dict[str, str]:
    raise Problem(409, "Conflict", "already there")


def _app(tmp_path: Path, log: list[str], **extra: object) -> FastAPI:
    url = f"sqlite:///{tmp_path / 'kernel.db'}"
    fields: dict[str, object] = {
        "title": "Test", "settings": Settings(database_url=url), "db": Database(url), "clock": SystemClock(),
        "routers": [router], "max_body_bytes": 100,
        "on_start": [lambda app: log.append("open")], "on_stop": [lambda: log.append("close")],
        **extra,
    }
    return create_service(ServiceSpec(service=Service.CENTRE, **fields))  # type: ignore[arg-type]


def test_workers_start_after_the_start_hooks_and_stop_before_the_stop_hooks_in_reverse(tmp_path: Path) -> None:
    log: list[str] = []
    with TestClient(_app(tmp_path, log, workers=[Recorder("a", log), Recorder("b", log)])):
        assert log == ["open", "start a", "start b"]
    assert log == ["open", "start a", "start b", "stop b", "stop a", "close"]


def test_without_run_workers_only_the_hooks_run(tmp_path: Path) -> None:
    log: list[str] = []
    with TestClient(_app(tmp_path, log, workers=[Recorder("a", log)], run_workers=False)):
        pass
    assert log == ["open", "close"]


def test_a_worker_that_refuses_to_start_stops_the_app_and_those_started_before_it(tmp_path: Path) -> None:
    log: list[str] = []
    app = _app(tmp_path, log, workers=[Recorder("a", log), Recorder("b", log, refuse=True)])
    with pytest.raises(RuntimeError, match="b refuses"), TestClient(app):
        pass
    assert log == ["open", "start a", "stop a", "close"]


def test_status_is_ok_only_when_every_section_is_and_merges_their_fields_for_admins(
        tmp_path: Path, db: Database, make_token: Callable[[Role], str]) -> None:
    sections = [lambda: Health(ok=True, fields={"database": "ok"}), lambda: Health(ok=False, fields={"index": 3})]
    admin = {"Authorization": f"Bearer {make_token(Role.ADMIN)}"}
    with TestClient(_app(tmp_path, [], status=sections, db=db)) as client:
        body = client.get("/status", headers=admin).json()
        # every app's workers: here only SQLite's checkpoint (PostgreSQL does its own)
        assert set(body.pop("workers")) == ({"bastion-wal-checkpoint"} if is_sqlite(db.engine) else set())
        assert body == {"status": "degraded", "version": __version__, "database": "ok", "index": 3,
                        "missing_settings": []}
        # anyone else: the overall health, for a load balancer; not the fields, the version or what is missing
        assert client.get("/status").json() == {"status": "degraded"}
        other = {"Authorization": f"Bearer {make_token(Role.ANALYST)}"}
        assert client.get("/status", headers=other).json() == {"status": "degraded"}
    with TestClient(_app(tmp_path, [], status=sections[:1], db=db)) as client:
        assert client.get("/status").json() == {"status": "ok"}


def test_every_answer_has_the_security_headers_errors_are_problems_and_big_bodies_are_refused(
        tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, [])) as client:
        refused = client.post("/echo")
        assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
        assert all(refused.headers[name] == value for name, value in SECURITY_HEADERS.items())
        assert client.post("/echo", content=b"x" * 101).status_code == 413
        assert client.get("/docs").status_code == 200


def test_every_service_on_sqlite_copies_its_wal_back_in_a_worker_of_its_own(tmp_path: Path) -> None:
    """The hub and the EU Centre as much as the platform: a commit past the automatic threshold (about 200 MB)
    would otherwise copy the WAL back in a request."""
    def checkpointers() -> int:
        return sum(t.name == "bastion-wal-checkpoint" for t in threading.enumerate())

    log: list[str] = []
    before = checkpointers()  # another test's leftover thread changes nothing here
    with TestClient(_app(tmp_path, log, workers=[Recorder("a", log)])):
        assert checkpointers() == before + 1
    assert checkpointers() == before


def test_a_worker_failing_round_after_round_makes_the_status_degraded_and_says_which_to_admins_only(
        tmp_path: Path, db: Database, make_token: Callable[[Role], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A removal-order clock that fails every round must not leave ``/status`` ok; its error's message (which may
    hold a secret) is never shown, only its type."""
    failing = threading.Event()

    def round_() -> None:
        if failing.is_set():
            raise RuntimeError("postgresql://bastion:hunter2@db/bastion refused")

    monkeypatch.setattr("bastion.core.worker.FAILING_SECONDS", 0.2)
    clock = Worker(round_, 0.01, "bastion-orders")
    admin = {"Authorization": f"Bearer {make_token(Role.ADMIN)}"}
    with TestClient(_app(tmp_path, [], workers=[clock], db=db)) as client:
        assert until(lambda: clock.rounds.last_ok_at is not None)
        assert client.get("/status").json() == {"status": "ok"}
        failing.set()
        assert until(lambda: clock.rounds.failures_in_a_row >= 2)
        assert client.get("/status").json() == {"status": "ok"}  # not yet: failing for under FAILING_SECONDS
        assert until(lambda: clock.rounds.failing)
        assert client.get("/status").json() == {"status": "degraded"}
        seen = client.get("/status", headers=admin)
        shown = seen.json()["workers"]["bastion-orders"]
        assert shown["failing"] and shown["failures"] >= 2 and shown["last_error"] == "RuntimeError"
        assert shown["last_failed_at"] >= shown["failing_since"] >= shown["last_ok_at"]
        assert "hunter2" not in seen.text
        failing.clear()  # one good round mends it
        assert until(lambda: clock.rounds.failures_in_a_row == 0)
        assert client.get("/status").json() == {"status": "ok"}
        assert client.get("/status", headers=admin).json()["workers"]["bastion-orders"]["last_error"] == "RuntimeError"

