"""Hash exchanges over HTTP: /v1/exchanges (list, configure, status, fetch now, feedback).

An exchange feeding a restricted bank (NCMEC's and StopNCII's always do) does not exist outside the child-safety
roles: left out of lists, answered as unknown. Credentials are never accepted nor answered: an exchange names the
environment variable the server reads them from, and says only whether it is set.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.context import context
from bastion.core.http import RowId, require
from bastion.exchanges import clients, services
from bastion.exchanges.interfaces import ExchangeKind, Opinion

router = APIRouter(prefix="/v1/exchanges", tags=["exchanges"])
Reader = Annotated[Principal, Depends(require(roles.EXCHANGES))]
Admin = Annotated[Principal, Depends(require(roles.EXCHANGES_CONFIGURE))]


class ExchangeAnswer(BaseModel):
    name: str
    kind: str
    bank: str
    restricted: bool
    enabled: bool
    signal_types: list[str]
    categories: list[str]
    entry_category: str
    settings: dict[str, Any]
    credentials_env: str = Field(description="the environment variable the server reads the credentials from")
    credentials_present: bool = Field(description="whether that variable is set in this server's environment")
    interval_seconds: int
    fetched: bool = Field(description="whether a fetch has ever committed a checkpoint")
    progress: int | None = Field(description="the checkpoint's time (Unix seconds): fetched up to here")
    last_fetch_at: str | None
    last_success_at: str | None
    last_error: str
    records_fetched: int
    entries_added: int
    entries_removed: int
    entries: int = Field(description="bank entries that came from this exchange now")


class ExchangesAnswer(BaseModel):
    exchanges: list[ExchangeAnswer]
    available: bool = Field(description="whether python-threatexchange (the exchanges extra) is installed")


class NewExchangeBody(BaseModel):
    name: str = Field(max_length=64)
    kind: ExchangeKind
    bank: str = Field(max_length=100)
    signal_types: list[str] = Field(default_factory=list, max_length=10)
    categories: list[str] = Field(default_factory=list, max_length=100)
    entry_category: str = Field(default="", max_length=64)
    settings: dict[str, Any] = Field(default_factory=dict, description="privacy_group (ThreatExchange); environment, "
                                     "only_esp_ids (NCMEC); base_url (a test environment)")
    credentials_env: str = Field(default="", max_length=100, description="default: TX_ACCESS_TOKEN (ThreatExchange, "
                                 "APPID|SECRET), TX_NCMEC_CREDENTIALS (NCMEC, USER:PASSWORD), TX_STOPNCII_KEYS "
                                 "(FETCH_KEY,SUBSCRIPTION_KEY[,FEEDBACK_KEY]), TX_TAT_CREDENTIALS (USER:PASSWORD)")
    interval_seconds: int = Field(default=3600, ge=services.MIN_INTERVAL_SECONDS, le=30 * 86400)


class ExchangeChange(BaseModel):
    enabled: bool | None = None
    interval_seconds: int | None = Field(default=None, ge=services.MIN_INTERVAL_SECONDS, le=30 * 86400)
    categories: list[str] | None = Field(default=None, max_length=100)
    entry_category: str | None = Field(default=None, max_length=64)
    refetch: bool = Field(default=False, description="forget the checkpoint: the next fetch reads every record "
                          "again and applies the filters as they are now")


class FetchAnswer(BaseModel):
    pages: int
    records: int
    added: int
    removed: int
    skipped: int
    complete: bool = Field(description="false when max_pages stopped it before the exchange was up to date")


class FeedbackBody(BaseModel):
    entry_id: RowId
    opinion: Opinion


class FeedbackAnswer(BaseModel):
    queued_for: list[str]


@router.get("", summary="Exchanges with their last fetch, counts and error", response_model=ExchangesAnswer)
def list_exchanges(request: Request, principal: Reader) -> dict[str, Any]:
    found = services.list_exchanges(context(request).db, principal)
    return {"exchanges": [s.to_json() for s in found], "available": clients.available()}


@router.post("", status_code=201, summary="Configure an exchange feeding a bank", response_model=ExchangeAnswer)
def add_exchange(request: Request, body: NewExchangeBody, principal: Admin) -> dict[str, Any]:
    ctx = context(request)
    services.add_exchange(ctx.db, services.NewExchange(
        body.name, body.kind, body.bank, tuple(body.signal_types), tuple(body.categories), body.entry_category,
        body.settings, body.credentials_env, body.interval_seconds), actor=principal, clock=ctx.clock)
    return services.exchange_status(ctx.db, body.name, principal).to_json()


@router.get("/{name}", summary="One exchange's settings and state", response_model=ExchangeAnswer)
def get_exchange(request: Request, name: str, principal: Reader) -> dict[str, Any]:
    return services.exchange_status(context(request).db, name, principal).to_json()


@router.patch("/{name}", summary="Enable or disable an exchange, change its schedule or filters, refetch",
              response_model=ExchangeAnswer)
def change_exchange(request: Request, name: str, body: ExchangeChange, principal: Admin) -> dict[str, Any]:
    ctx = context(request)
    services.update_exchange(ctx.db, name, actor=principal, enabled=body.enabled,
                             interval_seconds=body.interval_seconds, categories=body.categories,
                             entry_category=body.entry_category, refetch=body.refetch, clock=ctx.clock)
    return services.exchange_status(ctx.db, name, principal).to_json()


@router.post("/{name}/fetch", summary="Fetch now from the checkpoint (at most max_pages pages)",
             response_model=FetchAnswer)
async def fetch_now(request: Request, name: str, principal: Reader,
                    max_pages: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    ctx = context(request)
    result = await run_in_threadpool(lambda: services.fetch(ctx.db, name, actor=principal, clock=ctx.clock,
                                                            max_pages=max_pages))
    matcher = getattr(request.app.state, "matcher", None)
    if matcher is not None:
        await run_in_threadpool(matcher.refresh)  # live in this process at once
    return dict(result.__dict__)


@router.post("/feedback", summary="Tell the exchanges an entry came from: seen, true or false positive",
             response_model=FeedbackAnswer, status_code=202)
def feedback(request: Request, body: FeedbackBody, principal: Reader) -> dict[str, Any]:
    ctx = context(request)
    return {"queued_for": services.send_feedback(ctx.db, body.entry_id, body.opinion, actor=principal,
                                                 clock=ctx.clock)}
