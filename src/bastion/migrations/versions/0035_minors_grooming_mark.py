"""minors: the grooming watch's mark over the event log (grooming detection leaves the request path)

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'minor_marks',
        sa.Column('log', sa.String(length=48), nullable=False),
        sa.Column('last_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('log', name=op.f('pk_minor_marks')),
    )
    # Every event written so far was watched by the requests that wrote it: the watch starts after them (from 0 it
    # would reopen, from old attempts, cases that specialists have dismissed).
    events, marks = sa.table('minor_events', sa.column('id')), sa.table('minor_marks', sa.column('log'),
                                                                        sa.column('last_id'))
    op.execute(sa.insert(marks).from_select(['log', 'last_id'], sa.select(
        sa.literal('grooming'), sa.func.coalesce(sa.func.max(events.c.id), 0))))


def downgrade() -> None:
    op.drop_table('minor_marks')
