"""transparency: monthly cuts of the roll-ups (whole months read without a month of daily rows), filled from the
daily rows already counted; events the worker skipped as unreadable

Revision ID: 0024
Revises: 0027
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0024'
down_revision = '0027'
branch_labels = None
depends_on = None

#: As ``transparency/rollups.py: CUTS`` when this revision was written: kept dimensions, and whether durations too.
CUTS = {(): True, ('category',): True, ('country',): True, ('territory',): True, ('content_type',): True,
        ('language',): True, ('category', 'country'): False, ('country', 'territory'): False,
        ('country', 'content_type'): False, ('country', 'language'): False}
DIMENSIONS = ('category', 'country', 'territory', 'content_type', 'language')
COUNT_COLUMNS = ('metric', 'source', 'path', 'action', 'proactive', 'before_view')
HISTOGRAM_COLUMNS = ('source', 'path', 'proactive', 'bucket')


def upgrade() -> None:
    op.create_table(
        'transparency_cuts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('keep', sa.String(length=64), nullable=False),
        sa.Column('metric', sa.String(length=32), nullable=False),
        sa.Column('category', sa.String(length=64), nullable=False),
        sa.Column('country', sa.String(length=8), nullable=False),
        sa.Column('territory', sa.String(length=120), nullable=False),
        sa.Column('content_type', sa.String(length=16), nullable=False),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=24), nullable=False),
        sa.Column('path', sa.String(length=24), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('proactive', sa.Boolean(), nullable=False),
        sa.Column('before_view', sa.Boolean(), nullable=False),
        sa.Column('bucket', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.Column('items', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('month', 'keep', 'metric', 'category', 'country', 'territory', 'content_type', 'language',
                            'source', 'path', 'action', 'proactive', 'before_view', 'bucket',
                            name='uq_transparency_cuts_cell'),
    )
    op.create_table(
        'transparency_quarantined',
        sa.Column('log', sa.String(length=48), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=False),
        sa.Column('at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('log', 'event_id'),
    )
    _fill()


def _fill() -> None:
    """The cuts of every month already counted, summed from its daily rows (what the worker keeps from now on)."""
    bind = op.get_bind()
    c = sa.column
    daily = sa.table('transparency_rollups', c('day'), c('count'), c('items'), c('bucket'), c('metric'),
                     *[c(name) for name in (*DIMENSIONS, 'source', 'path', 'action', 'proactive', 'before_view')])
    cuts = sa.table('transparency_cuts', c('month'), c('keep'), c('count'), c('items'), c('bucket'), c('metric'),
                    *[c(name) for name in (*DIMENSIONS, 'source', 'path', 'action', 'proactive', 'before_view')])
    month = (sa.func.date(daily.c.day, 'start of month') if bind.dialect.name == 'sqlite'
             else sa.cast(sa.func.date_trunc('month', daily.c.day), sa.Date))
    for keep, histograms in CUTS.items():
        kept = [daily.c[d] for d in keep]
        blanks = [sa.literal('').label(d) for d in DIMENSIONS if d not in keep]
        counts = [daily.c[name] for name in COUNT_COLUMNS]
        select = sa.select(month.label('month'), sa.literal(','.join(keep)).label('keep'), *counts, *kept, *blanks,
                           sa.literal(-1).label('bucket'), sa.func.sum(daily.c['count']).label('count'),
                           sa.func.sum(daily.c['items']).label('items')).group_by(month, *counts, *kept)
        names = ['month', 'keep', *COUNT_COLUMNS, *keep, *(d for d in DIMENSIONS if d not in keep), 'bucket', 'count',
                 'items']
        bind.execute(cuts.insert().from_select(names, select))
        if not histograms:
            continue
        metric = (daily.c.metric + sa.literal('#h')).label('metric')
        histogram = [daily.c[name] for name in HISTOGRAM_COLUMNS]
        select = sa.select(month.label('month'), sa.literal(','.join(keep)).label('keep'), metric, *histogram, *kept,
                           *blanks, sa.literal('').label('action'), sa.literal(False).label('before_view'),
                           sa.func.sum(daily.c['count']).label('count'), sa.literal(0).label('items')
                           ).where(daily.c.bucket != -1).group_by(month, daily.c.metric, *histogram, *kept)
        names = ['month', 'keep', 'metric', *HISTOGRAM_COLUMNS, *keep, *(d for d in DIMENSIONS if d not in keep),
                 'action', 'before_view', 'count', 'items']
        bind.execute(cuts.insert().from_select(names, select))


def downgrade() -> None:
    op.drop_table('transparency_quarantined')
    op.drop_table('transparency_cuts')
