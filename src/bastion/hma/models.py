"""HMA's bank content: one id for the several signals of one file.

HMA gives each banked file one id (a photo's PDQ and MD5 share it), and its lookups answer that id. Bastion keeps one
entry per signal, so a file banked through HMA's API is a group of entries; the group's id is the id of its first
entry. Entries with no row here (banked through ``/v1`` or a CSV import) are each their own content, with their own
entry id: one id space, never two contents with one id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base


class HmaContent(Base):
    """One entry's membership of an HMA content, with what HMA keeps of the content (repeated on each member)."""

    __tablename__ = "hma_contents"

    #: Deleting the entry (through any API) deletes its membership too.
    entry_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("bank_entries.id", ondelete="CASCADE"),
        primary_key=True)
    content_id: Mapped[int] = mapped_column(BigInteger, index=True)
    #: HMA's ``disable_until_ts``: 1 enabled, 0 disabled, else a Unix time (Bastion disables the entries until
    #: a curator enables them again; see docs/hma.md).
    disable_until_ts: Mapped[int] = mapped_column(BigInteger, default=1)
    original_media_uri: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    #: HMA's banking metadata (``content_id``, ``content_uri``, ``json``), as sent.
    content_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
