"""Uploads are spooled to disk with a hard size cap before anything reads them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.datastructures import UploadFile

from bastion.core.http import Problem

_CHUNK = 1 << 20


@asynccontextmanager
async def spooled(upload: UploadFile, max_bytes: int, spool_dir: Path | None = None) -> AsyncIterator[Path]:
    """Copy an upload to a private temporary file, refusing it past ``max_bytes``; the file is always deleted."""
    fd, name = tempfile.mkstemp(prefix="bastion-upload-", dir=spool_dir)
    path = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise Problem(413, "Content too large", f"uploads are limited to {max_bytes} bytes")
                out.write(chunk)
        if size == 0:
            raise Problem(422, "Empty file", "the uploaded file is empty")
        yield path
    finally:
        path.unlink(missing_ok=True)
