"""POST /v1/hash: a file in, its signals out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.context import context
from bastion.core.http import Problem, require
from bastion.core.uploads import spooled
from bastion.hashing.interfaces import MediaKind
from bastion.hashing.services import FileSignals, hash_path

router = APIRouter(prefix="/v1", tags=["hashing"])

ACCEPTED_KINDS = (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.TEXT)


def readable_media(signals: FileSignals) -> FileSignals:
    """Refuse files that are no media we handle, that would cost more to decode than the budget allows, or that
    every media hasher failed on."""
    if signals.kind not in ACCEPTED_KINDS:
        accepted = ", ".join(k.value for k in ACCEPTED_KINDS)
        raise Problem(415, "Unsupported media type", f"the file is not an image, video or text (accepted: {accepted})")
    if signals.over_budget is not None:
        raise Problem(413, "Media too large to decode", str(signals.over_budget), limit=signals.over_budget.setting)
    if signals.errors:
        raise Problem(415, "Unreadable media", f"the {signals.kind.value} could not be decoded: {signals.errors[0]}")
    return signals


class SignalAnswer(BaseModel):
    signal_type: str = Field(description="a signal type name, e.g. pdq")
    value: str
    quality: int | None = Field(default=None, description="the hasher's quality score, where it gives one")


class HashAnswer(BaseModel):
    kind: str = Field(description="image, video or text")
    signals: list[SignalAnswer]


@router.post("/hash", summary="Hash a file with every signal type that can read it", response_model=HashAnswer,
             response_model_exclude_none=True)
async def hash_file(
    request: Request,
    file: Annotated[UploadFile, File(description="image, video or text file")],
    principal: Annotated[Principal, Depends(require(roles.HASH))],
) -> dict[str, Any]:
    ctx = context(request)
    async with spooled(file, ctx.settings.max_upload_bytes, ctx.settings.spool_dir) as path:
        signals = readable_media(await run_in_threadpool(hash_path, path))
    return {"kind": signals.kind.value, "signals": signals.to_json()}
