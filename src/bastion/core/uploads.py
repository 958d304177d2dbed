"""Uploads are spooled to disk with a hard size cap before anything reads them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.http import Problem, problem_response

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


#: Room for multipart boundaries and form fields beyond the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024


class BodyLimit:
    """ASGI middleware: refuse request bodies over a cap before anything parses or spools them.

    A declared Content-Length over the cap is answered 413 at once; a body without one (chunked) is counted as it
    streams and cut off at the cap, so no request can fill the disk with a multipart temporary file.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise Problem(413, "Content too large", f"request bodies are limited to {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, "Content too large", f"request bodies are limited to {self.max_bytes} bytes")
        await response(scope, receive, send)
