"""Settings, read once from the environment (``BASTION_*``) so every process of a deployment agrees."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///./bastion.db"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    #: Largest upload accepted by /v1/hash, /v1/match and the console (bytes).
    max_upload_bytes: int = 64 * 1024 * 1024
    #: How often each process pulls the bank change log into its in-memory indexes (seconds).
    index_refresh_seconds: float = 0.25
    #: Console sessions expire after this many seconds without use.
    session_ttl_seconds: int = 8 * 3600
    #: Where uploads are spooled while being hashed; never kept after the request.
    spool_dir: Path | None = None
    #: Whether the console sets the Secure flag on cookies (off for http://localhost).
    secure_cookies: bool = False
    #: The platform's moderation policy (TOML); the package's default policy when unset.
    policy_path: Path | None = None
    #: Where moderation actions are sent (the platform's webhook); nothing is sent when unset.
    platform_webhook_url: str | None = None
    #: HMAC key that signs webhooks. Never logged.
    webhook_secret: bytes = field(default=b"", repr=False)
    #: How often the outbox worker looks for messages to deliver (seconds).
    outbox_interval_seconds: float = 0.5

    @classmethod
    def from_env(cls) -> Settings:
        spool = os.environ.get("BASTION_SPOOL_DIR")
        return cls(
            database_url=os.environ.get("BASTION_DATABASE_URL") or DEFAULT_DATABASE_URL,
            max_upload_bytes=_int("BASTION_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            index_refresh_seconds=_int("BASTION_INDEX_REFRESH_MS", 250) / 1000,
            session_ttl_seconds=_int("BASTION_SESSION_TTL_SECONDS", cls.session_ttl_seconds),
            spool_dir=Path(spool) if spool else None,
            secure_cookies=os.environ.get("BASTION_SECURE_COOKIES", "") in ("1", "true", "yes"),
            policy_path=Path(policy) if (policy := os.environ.get("BASTION_POLICY")) else None,
            platform_webhook_url=os.environ.get("BASTION_PLATFORM_WEBHOOK_URL") or None,
            webhook_secret=os.environ.get("BASTION_WEBHOOK_SECRET", "").encode(),
        )
