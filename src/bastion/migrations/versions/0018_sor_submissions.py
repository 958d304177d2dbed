"""transparency: statements of reasons' submission to the DSA Transparency Database (sor_submissions, sor_events)

Revision ID: 0018
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0018'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sor_submissions',
        sa.Column('puid', sa.String(length=100), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('lease', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('locked_until', bastion.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('errors', sa.JSON(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('uuid', sa.String(length=64), nullable=False),
        sa.Column('queued_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('done_at', bastion.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('puid'),
    )
    op.create_index('ix_sor_submissions_due', 'sor_submissions', ['state', 'next_attempt_at'], unique=False)
    op.create_table(
        'sor_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('subject', sa.String(length=260), nullable=False),
        sa.Column('kind', sa.String(length=48), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('external_id', sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('external_id', name=op.f('uq_sor_events_external_id')),
    )
    op.create_index('ix_sor_events_subject', 'sor_events', ['subject'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_sor_events_subject', table_name='sor_events')
    op.drop_table('sor_events')
    op.drop_index('ix_sor_submissions_due', table_name='sor_submissions')
    op.drop_table('sor_submissions')
