"""Banks and matching over HTTP: /v1/match, /v1/banks and their entries.

Restricted banks (child sexual abuse material) do not exist for callers outside the child-safety roles: they are
left out of lists, a restricted bank's name is answered as unknown, and a lookup that matches only a restricted bank
answers exactly as one that matches nothing. Every lookup is counted against the caller's budget and audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.context import context
from bastion.core.http import Problem, RowId, require
from bastion.core.uploads import spooled
from bastion.hashing import registry
from bastion.hashing.api import readable_media
from bastion.hashing.interfaces import HashResult, InvalidSignalValue
from bastion.hashing.services import hash_path, signal_json
from bastion.matching import services
from bastion.matching.budget import LookupBudget
from bastion.matching.matcher import Match, Matcher, Query, queries_for
from bastion.matching.schemas import MATCH_BODY, BankAnswer, BanksAnswer, EntryAnswer, MatchResult

router = APIRouter(prefix="/v1", tags=["banks and matching"])


def matcher(request: Request) -> Matcher:
    m = request.app.state.matcher
    assert isinstance(m, Matcher)
    return m


def spend_lookup(request: Request, principal: Principal) -> None:
    """Count one lookup against the caller's budget; 429 with ``Retry-After`` once it is spent."""
    budget = request.app.state.match_budget
    assert isinstance(budget, LookupBudget)
    spent = budget.take(principal.actor)
    if spent is not None:
        raise Problem(429, "Too many requests",
                      f"this credential's lookup budget ({budget.per_minute} a minute) is spent; "
                      f"try again in {spent.retry_after} s", headers={"Retry-After": str(spent.retry_after)})


def match_json(signals: list[dict[str, object]], matches: list[Match]) -> dict[str, Any]:
    return {"signals": signals, "matches": [m.to_json() for m in matches]}


class SignalQuery(BaseModel):
    signal_type: str = Field(description="a signal type name, e.g. pdq")
    value: str = Field(description="the signal value, e.g. 64 hex digits for pdq")
    banks: list[str] | None = Field(default=None, description="only these banks (default: all enabled)")


@router.post("/match", summary="Match a file (multipart) or a signal ({signal_type, value}) against the banks",
             openapi_extra=MATCH_BODY, response_model=MatchResult, response_model_exclude_none=True)
async def match(request: Request, principal: Annotated[Principal, Depends(require(roles.MATCH))]) -> dict[str, Any]:
    ctx = context(request)
    m = matcher(request)
    spend_lookup(request, principal)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, StarletteUpload):
            raise Problem(422, "Invalid request", "multipart body needs a file part named 'file'")
        bank_filter = {str(b) for b in form.getlist("bank")} or None
        async with spooled(upload, ctx.settings.max_upload_bytes, ctx.settings.spool_dir) as path:
            signals = readable_media(await run_in_threadpool(hash_path, path, variants=m.wants_variants()))
        queries = queries_for(signals)
        shown = await run_in_threadpool(_lookup, request, principal, queries, bank_filter)
        return match_json(signals.to_json(), shown)
    if content_type.startswith("application/json"):
        try:
            query = SignalQuery.model_validate_json(await request.body())
        except ValueError as exc:
            raise Problem(422, "Invalid request", str(exc).splitlines()[0]) from None
        signal = _parse_signal(query.signal_type, query.value)
        shown = await run_in_threadpool(_lookup, request, principal, [Query(signal)],
                                        set(query.banks) if query.banks else None)
        return match_json([signal_json(signal)], shown)
    raise Problem(415, "Unsupported media type", "send multipart/form-data with a file, or JSON {signal_type, value}")


def audited_match(request: Request, principal: Principal, queries: list[Query], banks: set[str] | None, *,
                  via: str) -> list[Match]:
    """Every match, restricted ones included, once the lookup is audited (a lookup that cannot be audited is not
    answered). What the caller may be shown is ``services.visible_matches`` of this."""
    ctx = context(request)
    found = matcher(request).match(queries, banks)
    services.record_lookup(ctx.db, principal, [q.signal for q in queries], found, via=via, clock=ctx.clock)
    return found


def _lookup(request: Request, principal: Principal, queries: list[Query], banks: set[str] | None) -> list[Match]:
    return services.visible_matches(audited_match(request, principal, queries, banks, via="api"), principal)


def _parse_signal(signal_type: str, value: str) -> HashResult:
    try:
        kind = registry.get(signal_type)
    except registry.UnknownSignalType as exc:
        raise Problem(422, "Unknown signal type", str(exc)) from None
    try:
        return HashResult(kind.name, kind.validate(value))
    except InvalidSignalValue as exc:
        raise Problem(422, "Invalid signal value", f"invalid {kind.name} value: {exc}") from None


def bank_json(summary: services.BankSummary) -> dict[str, Any]:
    b = summary.bank
    return {
        "name": b.name, "description": b.description, "enabled": b.enabled, "restricted": b.restricted,
        "dihedral": b.dihedral, "thresholds": b.thresholds, "entries": summary.entries,
        "by_signal_type": summary.by_signal_type, "created_at": b.created_at.isoformat(),
        "created_by": b.created_by,
    }


@router.get("/banks", summary="List banks with their sizes", response_model=BanksAnswer)
def list_banks(request: Request, principal: Annotated[Principal, Depends(require(roles.READ_BANKS))]
               ) -> dict[str, Any]:
    with context(request).db.read() as session:
        return {"banks": [bank_json(s) for s in services.list_banks(session, viewer=principal)]}


class NewBank(BaseModel):
    name: str
    description: str = ""
    restricted: bool = False
    dihedral: bool = False
    thresholds: dict[str, int] = Field(default_factory=dict)


@router.post("/banks", status_code=201, summary="Create a bank", response_model=BankAnswer)
def create_bank(request: Request, body: NewBank,
                principal: Annotated[Principal, Depends(require(roles.CURATE_BANKS))]) -> dict[str, Any]:
    ctx = context(request)
    bank = services.create_bank(ctx.db, body.name, actor=principal, description=body.description,
                                restricted=body.restricted, dihedral=body.dihedral, thresholds=body.thresholds,
                                clock=ctx.clock)
    matcher(request).refresh()
    return bank_json(services.BankSummary(bank, 0, {}))


class NewEntryBody(BaseModel):
    signal_type: str
    value: str
    category: str = ""
    source: str = ""
    note: str = ""


@router.post("/banks/{name}/entries", status_code=201, summary="Add an entry to a bank",
             response_model=EntryAnswer)
def add_entry(request: Request, name: str, body: NewEntryBody,
              principal: Annotated[Principal, Depends(require(roles.CURATE_BANKS))]) -> dict[str, Any]:
    ctx = context(request)
    entry = services.NewEntry.parse(body.signal_type, body.value, body.category, body.source, body.note)
    row = services.add_entry(ctx.db, name, entry, actor=principal, clock=ctx.clock)
    matcher(request).refresh()  # live in this process at once; other processes within a refresh interval
    return {"id": row.id, "bank": name, "signal_type": row.signal_type, "value": row.value,
            "category": row.category, "source": row.source, "note": row.note,
            "added_by": row.added_by, "added_at": row.added_at.isoformat()}


@router.delete("/banks/{name}/entries/{entry_id}", status_code=204, summary="Remove an entry from a bank")
def remove_entry(request: Request, name: str, entry_id: RowId,
                 principal: Annotated[Principal, Depends(require(roles.CURATE_BANKS))]) -> None:
    ctx = context(request)
    services.remove_entry(ctx.db, name, entry_id, actor=principal, clock=ctx.clock)
    matcher(request).refresh()


@router.get("/banks/{name}/export", summary="Every enabled entry of a bank as CSV")
def export_bank(request: Request, name: str,
                principal: Annotated[Principal, Depends(require(roles.CURATE_BANKS))]) -> StreamingResponse:
    rows = services.export_rows(context(request).db, name, actor=principal)
    header = next(rows)  # raises (BankError) before the response starts if the bank is unknown or restricted

    def lines() -> Iterator[str]:
        yield from services.csv_lines([header])
        yield from services.csv_lines(rows)

    return StreamingResponse(iterate_in_threadpool(lines()), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})



