"""The console's match page: a file or a signal checked against the banks, with the upload shown blurred and a
restricted match never shown at all (the same filtering, budget and audit as ``/v1/match``)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from PIL import Image, ImageOps
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from bastion.core.auth import roles
from bastion.core.auth.services import (
    SessionUser,
)
from bastion.core.context import AppContext, context
from bastion.core.http import Problem
from bastion.core.uploads import spooled
from bastion.hashing.api import readable_media
from bastion.hashing.interfaces import MediaKind
from bastion.hashing.services import hash_path
from bastion.matching import services
from bastion.matching.api import audited_match, matcher, spend_lookup
from bastion.matching.matcher import Match, queries_for
from bastion.web.console import (
    THUMBNAIL_PX,
    VALUE_CHARS,
    ConsoleRoute,
    MatchUser,
    check_csrf,
    page,
    truncate,
)

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


# --- matching -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Preview:
    """What the match page may show of the upload: a data: URI, or the reason there is none."""

    data_uri: str = ""
    width: int = 0
    height: int = 0
    withheld: bool = False


@router.get("/console/match")
def match_form(request: Request, user: MatchUser) -> Response:
    return _match_page(request, user)


def _match_page(request: Request, user: SessionUser, *, status_code: int = 200, **values: Any) -> Response:
    limit = context(request).settings.max_upload_bytes
    return page(request, "match.html", user, status_code=status_code, limit=_size_label(limit),
                 **{"result": None, "error": None, **values})


@router.post("/console/match")
async def match_upload(request: Request, user: MatchUser) -> Response:
    ctx = context(request)
    m = matcher(request)
    try:
        form = await request.form(max_files=1, max_fields=10)
    except StarletteHTTPException as exc:  # a malformed or oversized multipart body
        detail = f"The upload could not be read: {exc.detail}"
        return _match_page(request, user, status_code=400, error={"title": "Bad upload", "detail": detail})
    check_csrf(user, str(form.get("csrf_token") or ""))
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _match_page(request, user, status_code=422,
                           error={"title": "No file", "detail": "Choose a file to match."})
    child_safety = user.principal.role in roles.CHILD_SAFETY_ROLES
    try:
        spend_lookup(request, user.principal)
        async with spooled(upload, ctx.settings.max_upload_bytes, ctx.settings.spool_dir) as path:
            signals = readable_media(await run_in_threadpool(hash_path, path, variants=m.wants_variants()))
            found = await run_in_threadpool(lambda: audited_match(request, user.principal, queries_for(signals),
                                                                  None, via="console"))
            restricted = any(match.restricted for match in found)
            if restricted and child_safety:
                preview = _Preview(withheld=True)  # child-abuse material: never decoded for display
            elif restricted:
                # Never decoded either; for other roles it looks like any file without a preview, so the page is
                # no yes-or-no oracle on the restricted banks.
                preview = _Preview()
            elif signals.kind is MediaKind.IMAGE:
                preview = await run_in_threadpool(_thumbnail, path)
            else:
                preview = _Preview()
    except Problem as exc:
        return _match_page(request, user, status_code=exc.status,
                           error={"title": exc.title, "detail": _problem_detail(exc, ctx)})
    found = services.visible_matches(found, user.principal)
    result = {
        "kind": signals.kind.value,
        "signals": [
            {"signal_type": s.signal_type, "value": truncate(s.value, VALUE_CHARS), "quality": s.quality}
            for s in signals.signals
        ],
        "matches": [_match_row(match) for match in found],
        "restricted": preview.withheld,
        "preview": preview,
    }
    return _match_page(request, user, result=result)


def _problem_detail(exc: Problem, ctx: AppContext) -> str:
    if exc.status == 413:
        return f"The file is larger than the upload limit of {_size_label(ctx.settings.max_upload_bytes)}."
    detail = exc.detail[:1].upper() + exc.detail[1:]
    return detail if detail.endswith(".") else detail + "."


def _match_row(match: Match) -> dict[str, Any]:
    """Restricted matches reach this only for child-safety roles (``services.visible_matches``)."""
    return {**match.to_json(), "restricted": match.restricted}


def _thumbnail(path: Path) -> _Preview:
    """A JPEG at most THUMBNAIL_PX on a side, in memory only; no preview if the image will not decode."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG: decode at a reduced scale, much faster
            oriented = ImageOps.exif_transpose(img)
            small = oriented.convert("RGB")
            small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            small.save(out, format="JPEG", quality=70)
    except Exception:  # a preview is a courtesy: hashing has already accepted the file
        return _Preview()
    data = base64.b64encode(out.getvalue()).decode()
    return _Preview(f"data:image/jpeg;base64,{data}", small.width, small.height)


def _size_label(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.3g} {unit}"
    return f"{size / 1024:.3g} GiB"
