"""Encryption at rest for what must be kept but must not be readable from a stolen disk or database dump.

AES-256-GCM with a random nonce per blob. The caller names what the blob belongs to (``context``, e.g. a content
id); it is authenticated with the ciphertext, so a blob moved to another row does not open. The key lives outside
the database: ``BASTION_MEDIA_KEY`` (base64 of 32 bytes) or a key file created on first use, readable only by its
owner.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.core.errors import DomainError

KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(DomainError):
    """A key that is not a key, or a blob that was altered, moved or sealed with another key."""

    status = 500
    title = "Sealed material does not open"


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SealError(f"the media key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # never show the key
        return "Sealer(<key>)"

    def seal(self, data: bytes, context: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, context.encode())

    def open(self, blob: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError):
            raise SealError(f"the sealed data of {context} does not open with this key") from None


def decode_key(raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw.strip().encode() + b"=" * (-len(raw.strip()) % 4))
    except (binascii.Error, ValueError):
        raise SealError("the media key must be base64 of 32 random bytes") from None
    if len(key) != KEY_BYTES:
        raise SealError(f"the media key must be base64 of {KEY_BYTES} random bytes, got {len(key)} bytes")
    return key


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; a new one, written with mode 0600, when the file does not exist yet.

    An existing key file that its group or others may read is refused (fail closed): whoever reads the key opens
    everything sealed with it, so a copy made world-readable by a careless ``cp`` or backup restore must be fixed
    before the key is used.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        pass
    else:
        if mode & 0o077:
            raise SealError(f"the key file {path} may be read by others (mode {stat.S_IMODE(mode):04o}); "
                            f"make it private first: chmod 600 {path}")
        return decode_key(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a private name, then linked into place: a process starting at the same moment either
    # finds no file or a complete one, never a half-written key.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(new_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process linked its key first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return decode_key(path.read_text())
