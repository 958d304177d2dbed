"""Stored audit runs over HTTP, for analysts and auditors: the list, and one run with its settings and results."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.core.http import RowId, require
from bastion.feed.audit import store

router = APIRouter(prefix="/v1/feed/audits", tags=["feed"])
Reader = Annotated[Principal, Depends(require(roles.FEED_AUDITS))]


def database(request: Request) -> Database:
    db = request.app.state.ctx.db
    assert isinstance(db, Database)
    return db


Db = Annotated[Database, Depends(database)]


class RunSummary(BaseModel):
    id: int
    scenario: str
    seed: int
    minutes: float
    recommender: str
    gate: str
    started_at: str
    finished_at: str
    created_by: str


class RunList(BaseModel):
    runs: list[RunSummary]


class RunAnswer(RunSummary):
    settings: dict[str, Any]
    results: dict[str, Any]


def _summary(run: store.StoredRun) -> dict[str, Any]:
    return {"id": run.id, "scenario": run.scenario, "seed": run.seed, "minutes": float(run.settings["minutes"]),
            "recommender": str(run.settings["recommender"]), "gate": str(run.settings["gate"]),
            "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat(),
            "created_by": run.created_by}


@router.get("", summary="Stored feed audit runs, newest first")
def list_runs(db: Db, principal: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> RunList:
    return RunList.model_validate({"runs": [_summary(r) for r in store.latest(db, limit)]})


@router.get("/{run_id}", summary="A stored feed audit run: its settings and results, by persona and condition")
def get_run(run_id: RowId, db: Db, principal: Reader) -> RunAnswer:
    run = store.get(db, run_id)
    return RunAnswer.model_validate({**_summary(run), "settings": run.settings, "results": run.results})
