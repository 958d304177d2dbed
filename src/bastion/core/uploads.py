"""Uploads are spooled to disk with a hard size cap before anything reads them.

An upload may be child sexual abuse material, so no spooled copy may outlive its process, even one killed with
SIGKILL (no ``finally`` runs then). Each process spools into its own directory under the spool root
(``BASTION_SPOOL_DIR``, else the system's temporary directory), named ``bastion-spool-<pid>-*`` and locked with
``flock`` for as long as the process lives; the kernel drops the lock when the process dies, however it dies. At
start-up, and whenever a process opens its own directory, every directory of the root whose lock can be taken
belongs to a dead process and is deleted with what it holds.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.core.http import Problem, problem_response

_CHUNK = 1 << 20
SPOOL_PREFIX = "bastion-spool-"
#: A directory being made: locked first, then renamed to its ``SPOOL_PREFIX`` name, so no sweep sees it unlocked.
_NEW_PREFIX = ".bastion-spool-new-"


@dataclass
class _Spool:
    directory: Path
    lock_fd: int
    users: int


_spools: dict[tuple[Path, int], _Spool] = {}
_spools_lock = threading.Lock()


def _root(spool_dir: Path | None) -> Path:
    return _resolved(spool_dir if spool_dir is not None else Path(tempfile.gettempdir()))


@functools.lru_cache(maxsize=16)
def _resolved(root: Path) -> Path:
    """A spool root resolved once (each upload opens and closes the spool: no path walk each time)."""
    return root.resolve()


def open_spool(spool_dir: Path | None) -> Path:
    """This process's spool directory under ``spool_dir`` (made on first use, after sweeping dead processes'
    directories); pair each call with ``close_spool``. Made mode 0700; its lock is held until the process ends."""
    root = _root(spool_dir)
    key = (root, os.getpid())  # a forked worker gets a directory of its own
    with _spools_lock:
        spool = _spools.get(key)
        if spool is None or not spool.directory.is_dir():
            sweep_stale(root)
            spool = _spools[key] = _make_spool(root)
        spool.users += 1
        return spool.directory


def close_spool(spool_dir: Path | None) -> None:
    """Done with the directory ``open_spool`` gave: the last user deletes it (and anything left in it)."""
    key = (_root(spool_dir), os.getpid())
    with _spools_lock:
        spool = _spools.get(key)
        if spool is None:
            return
        spool.users -= 1
        if spool.users > 0:
            return
        del _spools[key]
        shutil.rmtree(spool.directory, ignore_errors=True)
        os.close(spool.lock_fd)


def _make_spool(root: Path) -> _Spool:
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_NEW_PREFIX}{os.getpid()}-", dir=root))
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh directory: nobody else can hold it
    directory = root / f"{SPOOL_PREFIX}{staging.name.removeprefix(_NEW_PREFIX)}"
    staging.rename(directory)  # the lock is on the inode: it stays held under the new name
    return _Spool(directory, fd, 0)


def sweep_stale(root: Path) -> list[Path]:
    """Delete every spool directory under ``root`` whose process is gone (its lock is free); returns them."""
    swept: list[Path] = []
    if not root.is_dir():
        return swept
    for directory in root.glob(f"{SPOOL_PREFIX}*"):
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # not a directory, or gone already
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live process holds it
            os.close(fd)
            continue
        try:
            shutil.rmtree(directory, ignore_errors=True)
            swept.append(directory)
        finally:
            os.close(fd)
    return swept


@asynccontextmanager
async def spooled(upload: UploadFile, max_bytes: int, spool_dir: Path | None = None) -> AsyncIterator[Path]:
    """Copy an upload to a private temporary file in this process's spool directory, refusing it past
    ``max_bytes``; the file is deleted after the request, and with the directory if the process dies first."""
    directory = open_spool(spool_dir)
    try:
        async with _spooled_in(upload, max_bytes, directory) as path:
            yield path
    finally:
        close_spool(spool_dir)


@asynccontextmanager
async def _spooled_in(upload: UploadFile, max_bytes: int, directory: Path) -> AsyncIterator[Path]:
    fd, name = tempfile.mkstemp(prefix="bastion-upload-", dir=directory)
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
