"""HMA's REST API on Bastion: ``/h`` hashing, ``/m`` matching, ``/c`` curation, with HMA's paths, parameters,
multipart part names (``photo``, ``video``), bank content ids and answers, behind Bastion's tokens.

Hashing and matching admit the roles that may hash and match (the platform's token among them), curation the
curators'. Lookups are counted against the caller's budget and audited as ``/v1/match``'s are, and a match in a
restricted bank (child sexual abuse material) is never told outside the child-safety roles: the answer is the one a
file no bank holds gets. What HMA has and Bastion does not is in docs/hma.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.context import context
from bastion.core.http import RowId, require
from bastion.core.uploads import close_spool, open_spool, spooled
from bastion.hashing.api import readable_media
from bastion.hashing.services import FileSignals, hash_path
from bastion.hma import services
from bastion.hma.fetch import UrlFetcher
from bastion.hma.interfaces import ExchangeDirectory, HmaError
from bastion.matching import services as banks
from bastion.matching.api import audited_match, matcher, spend_lookup
from bastion.matching.matcher import Query as MatchQuery
from bastion.matching.matcher import queries_for

router = APIRouter(tags=["HMA compatibility"])

Hasher = Annotated[Principal, Depends(require(roles.HASH))]
Matching = Annotated[Principal, Depends(require(roles.MATCH))]
Curator = Annotated[Principal, Depends(require(roles.CURATE_BANKS))]
Answer = dict[str, Any]


def fetcher(request: Request) -> UrlFetcher:
    """The app's fetcher for ``?url=`` forms, made from the settings on first use (tests may set their own)."""
    found = getattr(request.app.state, "hma_fetcher", None)
    if not isinstance(found, UrlFetcher):
        settings = context(request).settings
        found = request.app.state.hma_fetcher = UrlFetcher(settings.hma_fetch_hosts,
                                                            max_bytes=settings.max_upload_bytes)
    return found


# --- getting signals out of a request -------------------------------------------------------------------------


async def _upload_signals(request: Request, types: str | None, *, variants: bool = False
                          ) -> tuple[dict[str, str], FileSignals]:
    """HMA's multipart form: exactly one file, in a part named after its content type (``photo``, ``video``)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HmaError(400, "Missing multipart/form-data file upload")
    form = await request.form(max_files=2, max_fields=10)
    files = [(name, value) for name, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files:
        raise HmaError(400, "Missing multipart/form-data file upload")
    if len(files) > 1:
        raise HmaError(400, "Only one file allowed per request")
    part, upload = files[0]
    ctype = services.content_type(part)
    settings = context(request).settings
    async with spooled(upload, settings.max_upload_bytes, settings.spool_dir) as path:
        signals = readable_media(await run_in_threadpool(hash_path, path, variants=variants))
    return services.selected_signals(signals, ctype, types), signals


async def _url_signals(request: Request, url: str, hint: str | None, types: str | None, *,
                       variants: bool = False) -> tuple[dict[str, str], FileSignals]:
    """HMA's ``?url=`` form: fetched only from allow-listed public hosts (``hma/fetch.py``)."""
    settings = context(request).settings
    get = fetcher(request)
    directory = open_spool(settings.spool_dir)

    def work() -> tuple[dict[str, str], FileSignals]:
        with get.fetch(url, directory) as fetched:
            ctype = services.content_type_of(fetched.content_type, hint)
            signals = readable_media(hash_path(fetched.path, variants=variants))
            return services.selected_signals(signals, ctype, types), signals

    try:
        return await run_in_threadpool(work)
    finally:
        close_spool(settings.spool_dir)


def _queries(selected: dict[str, str], signals: FileSignals) -> tuple[list[MatchQuery], dict[str, str]]:
    """The file's queries for the selected signal types (dihedral variants included), and Bastion's name of
    each to the caller's."""
    names = {services.signal_type_for(name): name for name in selected}
    return [q for q in queries_for(signals) if q.signal.signal_type in names], names


def _lookup(request: Request, principal: Principal, queries: list[MatchQuery], names: dict[str, str],
            bank_filter: set[str] | None) -> dict[str, dict[str, list[Answer]]]:
    shown = banks.visible_matches(audited_match(request, principal, queries, bank_filter, via="hma"), principal)
    with context(request).db.read() as session:
        return services.lookup_answer(session, shown, names)


def _flag(raw: str, name: str) -> bool:
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise HmaError(400, f"invalid boolean parameter {name} - prefer true/false")


# --- /h: hashing ----------------------------------------------------------------------------------------------


@router.get("/h/hash", summary="HMA: fetch an allow-listed URL and hash it")
async def hash_url(request: Request, principal: Hasher, url: Annotated[str | None, Query()] = None,
                   content_type: str | None = None, types: str | None = None) -> dict[str, str]:
    if url is None:
        raise HmaError(400, "url is required")
    selected, _ = await _url_signals(request, url, content_type, types)
    return selected


@router.post("/h/hash", summary="HMA: hash one uploaded file (part named photo or video)")
async def hash_upload(request: Request, principal: Hasher, types: str | None = None) -> dict[str, str]:
    selected, _ = await _upload_signals(request, types)
    return selected


# --- /m: matching ---------------------------------------------------------------------------------------------


@router.get("/m/raw_lookup", summary="HMA: the bank content ids a signal matches")
async def raw_lookup(request: Request, principal: Matching, signal: str, signal_type: str,
                     banks_: Annotated[str | None, Query(alias="banks")] = None,
                     include_distance: str = "false") -> Answer:
    with_distance = _flag(include_distance, "include_distance")
    query = services.parse_signal(signal_type, signal)
    spend_lookup(request, principal)

    def work() -> Answer:
        found = audited_match(request, principal, [MatchQuery(query)], services.bank_names(banks_), via="hma")
        with context(request).db.read() as session:
            return services.raw_lookup_answer(session, banks.visible_matches(found, principal), with_distance)

    return await run_in_threadpool(work)


@router.get("/m/lookup", summary="HMA: the banks a signal, or an allow-listed URL's media, matches")
async def lookup_get(request: Request, principal: Matching, url: str | None = None, content_type: str | None = None,
                     types: str | None = None, signal: str | None = None, signal_type: str | None = None,
                     banks_: Annotated[str | None, Query(alias="banks")] = None, seed: str | None = None,
                     bypass_coinflip: str = "false") -> Answer:
    """``seed`` and ``bypass_coinflip`` are accepted and have no effect: Bastion's banks match all or nothing."""
    _flag(bypass_coinflip, "bypass_coinflip")
    bank_filter = services.bank_names(banks_)
    if url:
        spend_lookup(request, principal)
        selected, signals = await _url_signals(request, url, content_type, types,
                                               variants=matcher(request).wants_variants())
        queries, names = _queries(selected, signals)
        answer = await run_in_threadpool(_lookup, request, principal, queries, names, bank_filter)
        return answer.get(signal_type, {}) if signal_type is not None else answer
    if not signal or not signal_type:
        raise HmaError(400, "Either url or both signal and signal_type are required")
    query = services.parse_signal(signal_type, signal)
    spend_lookup(request, principal)
    answer = await run_in_threadpool(_lookup, request, principal, [MatchQuery(query)],
                                     {query.signal_type: signal_type}, bank_filter)
    return answer[signal_type]


@router.post("/m/lookup", summary="HMA: the banks an uploaded file (part named photo or video) matches")
async def lookup_post(request: Request, principal: Matching, types: str | None = None,
                      banks_: Annotated[str | None, Query(alias="banks")] = None, seed: str | None = None,
                      bypass_coinflip: str = "false") -> Answer:
    _flag(bypass_coinflip, "bypass_coinflip")
    spend_lookup(request, principal)
    selected, signals = await _upload_signals(request, types, variants=matcher(request).wants_variants())
    queries, names = _queries(selected, signals)
    return await run_in_threadpool(_lookup, request, principal, queries, names, services.bank_names(banks_))


@router.get("/m/index/status", summary="HMA: whether each signal type's index is built, and its size")
def index_status(request: Request, principal: Matching, signal_type: str | None = None) -> Answer:
    m = matcher(request)
    with context(request).db.read() as session:
        return services.index_status(session, principal, loaded=m.freshness.loaded,
                                     applied_change_id=m.freshness.applied_change_id, only=signal_type)


@router.post("/m/compare", summary="HMA: the distance between two hashes of each signal type")
def compare(principal: Matching, body: Annotated[dict[str, Any], Body()]) -> Answer:
    return services.compare(body)


# --- /c: curation ---------------------------------------------------------------------------------------------


class BankCreate(BaseModel):
    name: str = Field(max_length=100)
    enabled_ratio: float | None = None
    enabled: bool | None = None


class BankUpdate(BaseModel):
    name: str | None = Field(default=None, max_length=100)
    enabled_ratio: float | None = None
    enabled: bool | None = None


class ContentUpdate(BaseModel):
    disable_until_ts: int | None = None


class BankedContentMetadata(BaseModel):
    """HMA's metadata of banked content, kept as sent."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    content_id: str | None = Field(default=None, max_length=500)
    content_uri: str | None = Field(default=None, max_length=2000)
    json_data: dict[str, Any] | None = Field(default=None, alias="json")


@router.get("/c/banks", summary="HMA: the banks")
def list_banks(request: Request, principal: Curator) -> list[Answer]:
    with context(request).db.read() as session:
        return [services.bank_json(s.bank) for s in banks.list_banks(session, viewer=principal)]


@router.post("/c/banks", status_code=201, summary="HMA: create a bank (plain unless configured otherwise)")
def create_bank(request: Request, principal: Curator, body: BankCreate) -> Answer:
    ctx = context(request)
    bank = services.create_bank(ctx.db, body.name, services.enabled_from(body.enabled_ratio, body.enabled),
                                actor=principal, restricted=ctx.settings.hma_restricted_banks, clock=ctx.clock)
    matcher(request).refresh()
    return services.bank_json(bank)


@router.get("/c/bank/{bank_name}", summary="HMA: one bank")
def get_bank(request: Request, principal: Curator, bank_name: str) -> Answer:
    with context(request).db.read() as session:
        return services.bank_json(services.visible_bank(session, bank_name, principal))


@router.put("/c/bank/{bank_name}", summary="HMA: switch a bank's matching on or off")
def update_bank(request: Request, principal: Curator, bank_name: str, body: BankUpdate) -> Answer:
    ctx = context(request)
    bank = services.update_bank(ctx.db, bank_name, rename=body.name,
                                enabled=services.enabled_from(body.enabled_ratio, body.enabled), actor=principal,
                                clock=ctx.clock)
    matcher(request).refresh()
    return services.bank_json(bank)


async def _metadata(request: Request) -> dict[str, Any] | None:
    if not request.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        raw = await request.json()
    except ValueError:
        raise HmaError(400, "the body is not JSON") from None
    if not isinstance(raw, dict) or raw.get("metadata") is None:
        return None
    if not isinstance(raw["metadata"], dict):
        raise HmaError(400, "metadata should be a json object")
    try:
        return BankedContentMetadata.model_validate(raw["metadata"]).model_dump(by_alias=True, exclude_none=True)
    except ValidationError as exc:
        raise HmaError(400, f"Invalid metadata: {exc.errors()[0]['msg']}") from None


@router.post("/c/bank/{bank_name}/content", summary="HMA: bank a file (part photo or video, or an allow-listed url)")
async def add_content(request: Request, principal: Curator, bank_name: str, url: str | None = None,
                      content_type: str | None = None, types: str | None = None) -> Answer:
    ctx = context(request)
    with ctx.db.read() as session:  # an unknown (or unseen) bank is refused before anything is fetched or hashed
        services.visible_bank(session, bank_name, principal)
    metadata = await _metadata(request)
    if url:
        selected, _ = await _url_signals(request, url, content_type, types)
    elif request.headers.get("content-type", "").startswith("multipart/form-data"):
        selected, _ = await _upload_signals(request, types)
    else:
        raise HmaError(400, "Neither `url` nor multipart file upload was received")
    answer = await run_in_threadpool(lambda: services.add_content(
        ctx.db, bank_name, selected, actor=principal, clock=ctx.clock, metadata=metadata,
        original_media_uri=(metadata or {}).get("content_uri")))
    matcher(request).refresh()
    return answer


@router.post("/c/bank/{bank_name}/signal", summary="HMA: bank signals given as {signal_type: value}")
def add_signals(request: Request, principal: Curator, bank_name: str,
                body: Annotated[dict[str, str], Body()]) -> Answer:
    ctx = context(request)
    answer = services.add_content(ctx.db, bank_name, body, actor=principal, clock=ctx.clock)
    matcher(request).refresh()
    return answer


@router.get("/c/bank/{bank_name}/content/{content_id}", summary="HMA: one banked content")
def get_content(request: Request, principal: Curator, bank_name: str, content_id: RowId,
                include_signals: str = "false") -> Answer:
    with context(request).db.read() as session:
        bank = services.visible_bank(session, bank_name, principal)
        return services.get_content(session, bank, content_id).to_json(_flag(include_signals, "include_signals"))


@router.put("/c/bank/{bank_name}/content/{content_id}", summary="HMA: enable or disable a banked content")
def update_content(request: Request, principal: Curator, bank_name: str, content_id: RowId,
                   body: ContentUpdate) -> Answer:
    ctx = context(request)
    if body.disable_until_ts is None:
        with ctx.db.read() as session:
            bank = services.visible_bank(session, bank_name, principal)
            return services.get_content(session, bank, content_id).to_json()
    answer = services.update_content(ctx.db, bank_name, content_id, body.disable_until_ts, actor=principal,
                                     clock=ctx.clock)
    matcher(request).refresh()
    return answer


@router.delete("/c/bank/{bank_name}/content/{content_id}", summary="HMA: remove a banked content")
def delete_content(request: Request, principal: Curator, bank_name: str, content_id: RowId) -> Answer:
    ctx = context(request)
    deleted = services.delete_content(ctx.db, bank_name, content_id, actor=principal, clock=ctx.clock)
    matcher(request).refresh()
    return {"deleted": deleted}


def directory(request: Request) -> ExchangeDirectory | None:
    """Bastion's exchanges, when the app wired them (``web/app.py``); HMA's answers for none otherwise."""
    found: ExchangeDirectory | None = getattr(request.app.state, "hma_exchanges", None)
    return found


@router.get("/c/exchanges", summary="HMA: configured exchanges' names (Bastion's /v1/exchanges, docs/exchanges.md)")
def list_exchanges(request: Request, principal: Curator) -> list[str]:
    found = directory(request)
    return found.names(principal) if found is not None else []


@router.get("/c/exchanges/apis", summary="HMA: the exchange APIs this server can fetch")
def list_exchange_apis(request: Request, principal: Curator) -> list[str]:
    found = directory(request)
    return found.apis() if found is not None else []


class ExchangeCreate(BaseModel):
    bank: str = Field(max_length=100)
    api: str | None = Field(default=None, max_length=100)
    api_json: dict[str, Any] = Field(default_factory=dict)


@router.post("/c/exchanges", status_code=201, summary="HMA: configure an exchange (refused: use /v1/exchanges)")
def create_exchange(principal: Curator, body: ExchangeCreate) -> Answer:
    if body.api is None:
        raise HmaError(400, "Field `api_type` is required")
    raise HmaError(400, f"Exchanges are configured through Bastion's POST /v1/exchanges, not HMA's API "
                        f"(type '{body.api}')")


@router.get("/c/exchange/{exchange_name}", summary="HMA: one exchange's settings and fetch state")
def get_exchange(request: Request, principal: Curator, exchange_name: str) -> Answer:
    found = directory(request)
    described = found.describe(exchange_name, principal) if found is not None else None
    if described is None:
        raise HmaError(404, f"Exchange '{exchange_name}' not found")
    return described


@router.get("/c/signal_type", summary="HMA: the signal types, all enabled")
def list_signal_types(principal: Curator) -> list[Answer]:
    return [{"name": name, "enabled_ratio": 1.0} for name in services.all_signal_type_names()]


@router.get("/c/content_type", summary="HMA: the content types, all enabled")
def list_content_types(principal: Curator) -> list[Answer]:
    return [{"name": name, "enabled": True} for name in services.CONTENT_TYPES]
