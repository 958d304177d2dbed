"""Stored audit runs over HTTP, for analysts and auditors: the list, and one run with its settings and results."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

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


class PersonaOut(BaseModel):
    id: str
    description: str
    age: int
    band: str = Field(description="13-15, 16-17, 18-24 or 25+")
    interests: list[str]
    watch: dict[str, float] = Field(description="Topic -> the fraction of an item the persona watches, whatever it is")


class SettingsOut(BaseModel):
    """Everything that decided the run's figures (``runner.AuditSettings``): the same settings repeat it."""

    scenario: str
    personas: list[PersonaOut]
    minutes: float
    seed: int
    catalogue_size: int
    slate: int
    bucket_minutes: float
    recommender: str = Field(description="reference, or the platform recommender's URL")
    gate: str = Field(description="off, loopback or the URL of the Bastion whose gate was used")
    compared_to: int | None = Field(description="The run this one was compared with")


class BucketFigures(BaseModel):
    start: float = Field(description="Minute the bucket starts")
    end: float
    items: int
    harmful: int
    borderline: int
    unlabelled: int
    harmful_share: float
    borderline_share: float


class Withheld(BaseModel):
    items: int = Field(description="Items the gate withheld")
    reasons: dict[str, int] = Field(description="Reason code -> items withheld for it")
    labels: dict[str, int] = Field(description="Catalogue label -> items withheld")


class ConditionFigures(BaseModel):
    """One persona's session under one condition (``runner.summarise``)."""

    items: int
    harmful: int
    borderline: int
    unlabelled: int
    harmful_share: float
    borderline_share: float
    first_harmful_minute: float | None
    first_borderline_minute: float | None
    watched_minutes: float
    buckets: list[BucketFigures]
    withheld: Withheld
    served: list[tuple[float, str, str, str, float]] = Field(
        description="Each item served: [minute, content_id, topic, label, watched_seconds]")


class PersonaResults(PersonaOut):
    conditions: dict[str, ConditionFigures] = Field(description="without_gate, and with_gate when a gate was used")


class ResultsOut(BaseModel):
    personas: list[PersonaResults]
    catalogue: dict[str, int] = Field(description="Items in the synthetic catalogue, by label")


class RunAnswer(RunSummary):
    settings: SettingsOut
    results: ResultsOut


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
