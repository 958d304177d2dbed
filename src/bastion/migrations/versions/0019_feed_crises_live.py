"""feed: crises and their events; content items' livestream flag

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0019'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crises',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('protocol', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('bank', sa.String(length=100), nullable=False),
    sa.Column('exclude_live', sa.Boolean(), nullable=False),
    sa.Column('review_threshold_factor', sa.Float(), nullable=False),
    sa.Column('severity_boost', sa.Integer(), nullable=False),
    sa.Column('bank_confirmed', sa.Boolean(), nullable=False),
    sa.Column('decisions_seen', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('activated_by', sa.String(length=200), nullable=False),
    sa.Column('activated_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deactivated_at', bastion.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crises'))
    )
    op.create_table('crisis_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject', sa.String(length=260), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crisis_events')),
    sa.UniqueConstraint('external_id', name=op.f('uq_crisis_events_external_id'))
    )
    with op.batch_alter_table('crisis_events', schema=None) as batch_op:
        batch_op.create_index('ix_crisis_events_subject', ['subject', 'id'], unique=False)
    with op.batch_alter_table('content_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('live', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('content_items', schema=None) as batch_op:
        batch_op.drop_column('live')
    with op.batch_alter_table('crisis_events', schema=None) as batch_op:
        batch_op.drop_index('ix_crisis_events_subject')
    op.drop_table('crisis_events')
    op.drop_table('crises')
