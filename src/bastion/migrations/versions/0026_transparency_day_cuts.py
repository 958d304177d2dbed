"""transparency: daily cuts of the roll-ups (the days of a period outside its whole months read without every cell
of each day), filled from the daily rows already counted

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

#: As ``transparency/rollups.py: DAY_CUTS`` when this revision was written: kept dimensions, and whether durations too.
DAY_CUTS = {(): True, ('category',): False, ('country',): False, ('territory',): False, ('content_type',): False,
            ('language',): False}
DIMENSIONS = ('category', 'country', 'territory', 'content_type', 'language')
COUNT_COLUMNS = ('metric', 'source', 'path', 'action', 'proactive', 'before_view')
HISTOGRAM_COLUMNS = ('source', 'path', 'proactive', 'bucket')


def upgrade() -> None:
    op.create_table(
        'transparency_day_cuts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
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
        sa.UniqueConstraint('day', 'keep', 'metric', 'category', 'country', 'territory', 'content_type', 'language',
                            'source', 'path', 'action', 'proactive', 'before_view', 'bucket',
                            name='uq_transparency_day_cuts_cell'),
    )
    _fill()


def _fill() -> None:
    """The cuts of every day already counted, summed from its daily rows (what the worker keeps from now on)."""
    bind = op.get_bind()
    c = sa.column
    names = (*DIMENSIONS, 'source', 'path', 'action', 'proactive', 'before_view')
    daily = sa.table('transparency_rollups', c('day'), c('count'), c('items'), c('bucket'), c('metric'),
                     *[c(name) for name in names])
    cuts = sa.table('transparency_day_cuts', c('day'), c('keep'), c('count'), c('items'), c('bucket'), c('metric'),
                    *[c(name) for name in names])
    for keep, histograms in DAY_CUTS.items():
        kept = [daily.c[d] for d in keep]
        blanks = [sa.literal('').label(d) for d in DIMENSIONS if d not in keep]
        counts = [daily.c[name] for name in COUNT_COLUMNS]
        select = sa.select(daily.c.day, sa.literal(','.join(keep)).label('keep'), *counts, *kept, *blanks,
                           sa.literal(-1).label('bucket'), sa.func.sum(daily.c['count']).label('count'),
                           sa.func.sum(daily.c['items']).label('items')).group_by(daily.c.day, *counts, *kept)
        columns = ['day', 'keep', *COUNT_COLUMNS, *keep, *(d for d in DIMENSIONS if d not in keep), 'bucket', 'count',
                   'items']
        bind.execute(cuts.insert().from_select(columns, select))
        if not histograms:
            continue
        metric = (daily.c.metric + sa.literal('#h')).label('metric')
        histogram = [daily.c[name] for name in HISTOGRAM_COLUMNS]
        select = sa.select(daily.c.day, sa.literal(','.join(keep)).label('keep'), metric, *histogram, *kept,
                           *blanks, sa.literal('').label('action'), sa.literal(False).label('before_view'),
                           sa.func.sum(daily.c['count']).label('count'), sa.literal(0).label('items')
                           ).where(daily.c.bucket != -1).group_by(daily.c.day, daily.c.metric, *histogram, *kept)
        columns = ['day', 'keep', 'metric', *HISTOGRAM_COLUMNS, *keep, *(d for d in DIMENSIONS if d not in keep),
                   'action', 'before_view', 'count', 'items']
        bind.execute(cuts.insert().from_select(columns, select))


def downgrade() -> None:
    op.drop_table('transparency_day_cuts')
