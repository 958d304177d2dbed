"""minors: ages kept in one B-tree on SQLite (WITHOUT ROWID)

Every interaction check reads the ages of its accounts by id. A SQLite table whose key is text keeps its rows in one
B-tree by rowid and the key in another, so each look-up searched both; WITHOUT ROWID keeps the rows in the key's
B-tree (``docs/benchmarks.md``, "The realistic case"). The rows are small (under 100 bytes), as such a table wants.
PostgreSQL keeps its tables as heaps either way: nothing to do there.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None

_COLUMNS = 'account_id, basis, years, method, confidence, band, observed_at, recorded_at'


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild(with_rowid=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild(with_rowid=True)


def _rebuild(*, with_rowid: bool) -> None:
    """SQLite cannot change how a table is stored in place: a new table, the rows copied, the old one dropped."""
    op.create_table(
        'minor_ages_rebuilt',
        sa.Column('account_id', sa.String(length=200), nullable=False),
        sa.Column('basis', sa.String(length=16), nullable=False),
        sa.Column('years', sa.Float(), nullable=False),
        sa.Column('method', sa.String(length=100), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('band', sa.String(length=16), nullable=False),
        sa.Column('observed_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('recorded_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('account_id', name=op.f('pk_minor_ages')),
        sqlite_with_rowid=with_rowid,
    )
    op.execute(f'INSERT INTO minor_ages_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM minor_ages ORDER BY account_id')
    op.drop_table('minor_ages')
    op.rename_table('minor_ages_rebuilt', 'minor_ages')
