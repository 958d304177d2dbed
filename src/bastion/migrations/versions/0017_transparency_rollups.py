"""transparency: per-day roll-ups of the event logs' facts, and a high-water mark per log

Revision ID: 0017
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'transparency_rollups',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('metric', sa.String(length=24), nullable=False),
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
        sa.UniqueConstraint('day', 'metric', 'category', 'country', 'territory', 'content_type', 'language', 'source',
                            'path', 'action', 'proactive', 'before_view', 'bucket',
                            name='uq_transparency_rollups_cell'),
    )
    op.create_index('ix_transparency_rollups_day', 'transparency_rollups', ['day'])
    op.create_index('ix_transparency_rollups_metric_day', 'transparency_rollups', ['metric', 'day'])
    op.create_table(
        'transparency_marks',
        sa.Column('log', sa.String(length=48), nullable=False),
        sa.Column('last_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('log'),
    )


def downgrade() -> None:
    op.drop_table('transparency_marks')
    op.drop_index('ix_transparency_rollups_metric_day', table_name='transparency_rollups')
    op.drop_index('ix_transparency_rollups_day', table_name='transparency_rollups')
    op.drop_table('transparency_rollups')
