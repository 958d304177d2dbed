"""Stored audit runs: save one with its settings and results, list them, read one back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bastion.core.db import Database
from bastion.core.errors import DomainError
from bastion.feed.audit.models import FeedAuditRun


class AuditRunNotFound(DomainError):
    status = 404
    title = "Audit run not found"


@dataclass(frozen=True)
class StoredRun:
    id: int
    scenario: str
    seed: int
    settings: dict[str, Any]
    results: dict[str, Any]
    started_at: dt.datetime
    finished_at: dt.datetime
    created_by: str

    @classmethod
    def from_row(cls, row: FeedAuditRun) -> StoredRun:
        return cls(row.id, row.scenario, row.seed, dict(row.settings), dict(row.results), row.started_at,
                   row.finished_at, row.created_by)


def save(db: Database, *, settings: dict[str, Any], results: dict[str, Any], started_at: dt.datetime,
         finished_at: dt.datetime, created_by: str) -> StoredRun:
    with db.write() as session:
        row = FeedAuditRun(scenario=str(settings["scenario"]), seed=int(settings["seed"]), settings=settings,
                           results=results, started_at=started_at, finished_at=finished_at, created_by=created_by)
        session.add(row)
        session.flush()
        return StoredRun.from_row(row)


def get(db: Database, run_id: int) -> StoredRun:
    with db.read() as session:
        row = session.get(FeedAuditRun, run_id)
        if row is None:
            raise AuditRunNotFound(f"no audit run {run_id}")
        return StoredRun.from_row(row)


def latest(db: Database, limit: int = 100) -> list[StoredRun]:
    with db.read() as session:
        rows = session.scalars(select(FeedAuditRun).order_by(FeedAuditRun.id.desc()).limit(limit))
        return [StoredRun.from_row(r) for r in rows]
