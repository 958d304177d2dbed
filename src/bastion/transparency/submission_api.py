"""``/v1/transparency/statements``: where each statement of reasons stands with the DSA Transparency Database, and
the database's errors for those it refused (admin and analyst)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.context import AppContext, context
from bastion.core.http import require
from bastion.transparency import submission
from bastion.transparency.sor_states import SubmissionState

router = APIRouter(prefix="/v1/transparency/statements", tags=["transparency"])

Reader = Annotated[Principal, Depends(require(roles.SOR_SUBMISSIONS))]
Ctx = Annotated[AppContext, Depends(context)]


class SubmissionOut(BaseModel):
    puid: str
    state: SubmissionState
    #: Requests that carried it and failed in transit (network, 5xx, a refused token), or crashed unanswered.
    attempts: int
    #: The database's errors per field when it refused the statement (``rejected``).
    errors: dict[str, list[str]]
    #: The last transient failure, while it is retried.
    last_error: str
    #: The database's id once accepted ("" when it answered that it already held the puid without one).
    uuid: str
    queued_at: dt.datetime
    done_at: dt.datetime | None


class SubmissionsOut(BaseModel):
    #: Whether this deployment submits statements (``BASTION_TRANSPARENCY_DB_URL`` and ``_TOKEN`` set).
    submitting: bool
    #: Statements per state, over all of them.
    counts: dict[str, int]
    items: list[SubmissionOut]
    #: Pass as ``after`` for the next page; ``null`` at the end.
    next_after: str | None


@router.get("", summary="Statements of reasons and their submission to the DSA Transparency Database",
            response_model=SubmissionsOut)
def list_statements(
    principal: Reader, ctx: Ctx,
    state: Annotated[SubmissionState | None, Query(description="only this state (``rejected``: with errors)")] = None,
    after: Annotated[str, Query(max_length=100, description="the ``next_after`` of the previous page")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SubmissionsOut:
    with ctx.db.read() as session:
        counts = submission.counts(session)
        views = submission.listing(session, state=state, after=after, limit=limit)
    items = [SubmissionOut.model_validate(v, from_attributes=True) for v in views]
    return SubmissionsOut(submitting=ctx.settings.submits_statements, counts=counts, items=items,
                          next_after=items[-1].puid if len(items) == limit else None)
