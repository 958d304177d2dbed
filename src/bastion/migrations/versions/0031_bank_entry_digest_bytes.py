"""matching: a bank entry's ``value_digest`` holds the SHA-256's 32 bytes instead of its 64 hex characters

The unique index (bank, signal type, digest) is checked on every insert; bytes halve its keys and compare byte-wise
where hex text compared by collation. PostgreSQL converts in place (``decode``); SQLite, whose 3.40 has no
``unhex``, has each digest rewritten from Python in batches before the column's type changes.

Revision ID: 0031
Revises: 0028
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0028'
branch_labels = None
depends_on = None

_BATCH = 10_000


def _rewrite_sqlite(convert: Callable[[bytes | str], bytes | str]) -> None:
    """Every entry's digest through ``convert``, ``_BATCH`` rows at a time in id order (memory stays flat)."""
    bind = op.get_bind()
    last = 0
    while rows := bind.execute(sa.text("SELECT id, value_digest FROM bank_entries WHERE id > :last ORDER BY id "
                                       "LIMIT :n"), {"last": last, "n": _BATCH}).all():
        bind.execute(sa.text("UPDATE bank_entries SET value_digest = :digest WHERE id = :id"),
                     [{"id": row.id, "digest": convert(row.value_digest)} for row in rows])
        last = rows[-1].id


def _to_bytes(digest: bytes | str) -> bytes | str:
    return bytes.fromhex(digest) if isinstance(digest, str) else digest


def _to_hex(digest: bytes | str) -> bytes | str:
    return digest.hex() if isinstance(digest, bytes) else digest


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('bank_entries', 'value_digest', type_=sa.LargeBinary(length=32),
                        existing_type=sa.String(length=64), existing_nullable=False,
                        postgresql_using='decode(value_digest, \'hex\')')
        return
    _rewrite_sqlite(_to_bytes)
    with op.batch_alter_table('bank_entries', schema=None) as batch_op:
        batch_op.alter_column('value_digest', type_=sa.LargeBinary(length=32), existing_type=sa.String(length=64),
                              existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('bank_entries', 'value_digest', type_=sa.String(length=64),
                        existing_type=sa.LargeBinary(length=32), existing_nullable=False,
                        postgresql_using='encode(value_digest, \'hex\')')
        return
    _rewrite_sqlite(_to_hex)
    with op.batch_alter_table('bank_entries', schema=None) as batch_op:
        batch_op.alter_column('value_digest', type_=sa.String(length=64), existing_type=sa.LargeBinary(length=32),
                              existing_nullable=False)
