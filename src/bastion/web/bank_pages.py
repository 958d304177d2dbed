"""The console's bank pages: the list of banks, one bank, enabling it; and a bank's entries kept without the CLI:
search and page them with their notes, add one, import a CSV, remove one.

Curators, child-safety specialists and admins change entries; a restricted bank (child sexual abuse material) is
seen and changed by child-safety roles only (``matching.services`` enforces the same). Every form carries the
session's CSRF token.
"""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bastion.core.auth import roles
from bastion.core.auth.services import Principal, SessionUser
from bastion.core.context import context
from bastion.hashing import registry
from bastion.matching import services
from bastion.matching.api import matcher
from bastion.matching.interfaces import BankError
from bastion.matching.models import Bank, BankEntry
from bastion.web.console import (
    RECENT_ENTRIES,
    ConsoleRoute,
    CsrfField,
    Curator,
    PageError,
    Viewer,
    check_csrf,
    flash,
    page,
    truncate,
)

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


# --- banks --------------------------------------------------------------------------------------------------


@router.get("/console/banks")
def banks_page(request: Request, user: Viewer) -> Response:
    with context(request).db.read() as session:
        summaries = services.list_banks(session, viewer=user.principal)  # restricted banks: child safety only
        rows = [_bank_row(s, user.principal) for s in summaries]
    may_curate = user.principal.role in roles.CURATE_BANKS
    return page(request, "banks.html", user, banks=rows, may_curate=may_curate)


def _bank_row(summary: services.BankSummary, principal: Principal) -> dict[str, Any]:
    bank = summary.bank
    return {
        "name": bank.name, "description": bank.description, "enabled": bank.enabled,
        "restricted": bank.restricted, "dihedral": bank.dihedral,
        "thresholds": dict(sorted(bank.thresholds.items())),
        "entries": summary.entries, "by_signal_type": dict(sorted(summary.by_signal_type.items())),
        "can_see": services.can_see(bank, principal),
    }


@router.get("/console/banks/{name}")
def bank_page(request: Request, name: str, user: Viewer) -> Response:
    with context(request).db.read() as session:
        try:  # a restricted bank the viewer may not see is answered exactly as one that does not exist
            bank = services.visible_bank(session, name, user.principal)
        except BankError:
            raise PageError(404, "Not found", f"There is no bank named {name}.", user) from None
        (summary,) = services.list_banks(session, bank_id=bank.id)
        row = _bank_row(summary, user.principal)
        entries: list[dict[str, Any]] = []
        if row["can_see"]:  # a restricted bank's entries only for child-safety roles
            entries = [_entry_row(e) for e in services.recent_entries(session, bank, RECENT_ENTRIES)]
    return page(request, "bank.html", user, bank=row, entries=entries,
                 may_curate=user.principal.role in roles.CURATE_BANKS)


def _entry_row(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id, "signal_type": entry.signal_type, "value": truncate(entry.value, 24),
        "category": entry.category, "source": entry.source, "enabled": entry.enabled,
        "added_by": entry.added_by, "added_at": entry.added_at.strftime("%Y-%m-%d %H:%M UTC"),
    }


@router.post("/console/banks/{name}/enabled")
def set_bank_enabled(request: Request, name: str, user: Curator, csrf_token: CsrfField = "",
                     enabled: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "") -> Response:
    check_csrf(user, csrf_token)
    ctx = context(request)
    to_bank = back == "bank" and services.BANK_NAME.match(name) is not None
    response = RedirectResponse(f"/console/banks/{name}" if to_bank else "/console/banks", status_code=303)
    if enabled not in ("true", "false"):
        flash(response, request, "error", "Choose whether to enable or disable the bank.")
        return response
    try:
        services.update_bank(ctx.db, name, actor=user.principal, enabled=enabled == "true", clock=ctx.clock)
    except BankError as exc:
        flash(response, request, "error", str(exc))
        return response
    matcher(request).refresh()  # live in this process at once; other processes within a refresh interval
    flash(response, request, "ok", f"Bank {name} {'enabled' if enabled == 'true' else 'disabled'}.")
    return response


BankName = Annotated[str, Path(max_length=100)]
#: Entries per page of the entries page.
PER_PAGE = 50


@router.get("/console/banks/{name}/entries")
def entries_page(request: Request, name: BankName, user: Viewer, q: Annotated[str, Query(max_length=200)] = "",
                 page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1) -> Response:
    with context(request).db.read() as session:
        bank = _visible_bank(session, name, user)
        found = services.search_entries(session, bank, text=q.strip(), page=page_no, per_page=PER_PAGE)
        rows = [_row(e) for e in found.entries]
        restricted = bank.restricted
    keep = {"q": q.strip()} if q.strip() else {}
    return page(request, "bank_entries.html", user, bank_name=name, restricted=restricted, entries=rows,
                 q=q.strip(), page_no=page_no, signal_types=sorted(registry.BY_NAME),
                 may_change=user.principal.role in roles.CURATE_BANKS,
                 previous=urlencode({**keep, "page": page_no - 1}) if page_no > 1 else "",
                 next=urlencode({**keep, "page": page_no + 1}) if found.has_next else "")


def _visible_bank(session: Session, name: str, user: SessionUser) -> Bank:
    """The bank, if it exists and the viewer may see its entries; the same answer for "missing" and "not yours"
    would hide a restricted bank's name, but the banks list shows names to all, so say why."""
    try:
        bank = services.get_bank(session, name)
    except BankError:
        raise PageError(404, "Not found", f"There is no bank named {name}.", user) from None
    if not services.can_see(bank, user.principal):
        raise PageError(403, "Forbidden", "This bank's entries are for child-safety specialists and admins only.",
                        user)
    return bank


def _row(entry: BankEntry) -> dict[str, Any]:
    return {"id": entry.id, "signal_type": entry.signal_type, "value": entry.value, "category": entry.category,
            "source": entry.source, "note": entry.note, "enabled": entry.enabled, "added_by": entry.added_by,
            "added_at": entry.added_at.strftime("%Y-%m-%d %H:%M UTC")}


def _back(name: str) -> RedirectResponse:
    return RedirectResponse(f"/console/banks/{quote(name)}/entries", status_code=303)


@router.post("/console/banks/{name}/entries")
def add_entry_page(request: Request, name: BankName, user: Curator, csrf_token: CsrfField = "",
                   signal_type: Annotated[str, Form()] = "", value: Annotated[str, Form()] = "",
                   category: Annotated[str, Form()] = "", source: Annotated[str, Form()] = "",
                   note: Annotated[str, Form()] = "") -> Response:
    check_csrf(user, csrf_token)
    ctx = context(request)
    response = _back(name)
    try:
        entry = services.NewEntry.parse(signal_type, value, category, source, note)
        added = services.add_entry(ctx.db, name, entry, actor=user.principal, clock=ctx.clock)
    except BankError as exc:
        flash(response, request, "error", f"Not added: {exc}.")
        return response
    matcher(request).refresh()
    flash(response, request, "ok", f"Entry {added.id} added to {name}.")
    return response


@router.post("/console/banks/{name}/import")
async def import_page(request: Request, name: BankName, user: Curator) -> Response:
    form = await request.form(max_files=1, max_fields=10)
    check_csrf(user, str(form.get("csrf_token") or ""))
    response = _back(name)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        flash(response, request, "error", "Choose a CSV file to import.")
        return response
    ctx = context(request)
    try:
        stream = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
        result = await run_in_threadpool(services.import_csv, ctx.db, name, stream, actor=user.principal,
                                         clock=ctx.clock)
    except BankError as exc:
        flash(response, request, "error", f"Nothing imported: {exc}.")
        return response
    except UnicodeDecodeError:
        flash(response, request, "error", "Nothing imported: the file is not UTF-8 text.")
        return response
    matcher(request).refresh()
    flash(response, request, "ok", f"Imported {result.lines} line(s) into {name}: {result.added} added, "
                                   f"{result.duplicates} already there.")
    return response


@router.post("/console/banks/{name}/entries/{entry_id}/remove")
def remove_entry_page(request: Request, name: BankName, entry_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                      user: Curator, csrf_token: CsrfField = "") -> Response:
    check_csrf(user, csrf_token)
    ctx = context(request)
    response = _back(name)
    try:
        services.remove_entry(ctx.db, name, entry_id, actor=user.principal, clock=ctx.clock)
    except BankError as exc:
        flash(response, request, "error", f"Not removed: {exc}.")
        return response
    matcher(request).refresh()
    flash(response, request, "ok", f"Entry {entry_id} removed from {name}.")
    return response
