"""transparency: the monthly cuts' counts (bucket -1) get an index of their own, so a year's counts by Member State
read a few thousand rows instead of walking every histogram row of its months in the unique index

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_transparency_cuts_counts', 'transparency_cuts', ['keep', 'month'],
                    postgresql_where=sa.text('bucket = -1'), sqlite_where=sa.text('bucket = -1'))


def downgrade() -> None:
    op.drop_index('ix_transparency_cuts_counts', table_name='transparency_cuts')
