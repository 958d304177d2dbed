"""review console (reviewer settings, escalations)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'media_previews',
        sa.Column('content_id', sa.String(length=200), nullable=False),
        sa.Column('sealed', sa.LargeBinary(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('created_at', bastion.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('content_id', name=op.f('pk_media_previews')),
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reveal_media', sa.Boolean(), server_default='0', nullable=False))
    with op.batch_alter_table('review_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalated', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('escalation_note', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('rank_at', bastion.core.db.UTCDateTime(), nullable=True))
    # cases opened before this revision are ordered by their deadline
    op.execute("UPDATE review_cases SET rank_at = due_at")
    with op.batch_alter_table('review_cases', schema=None) as batch_op:
        batch_op.alter_column('rank_at', existing_type=bastion.core.db.UTCDateTime(), nullable=False)
        batch_op.drop_index('ix_review_cases_queue_state')
        batch_op.create_index('ix_review_cases_queue_state', ['queue', 'state', 'rank_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('review_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_review_cases_queue_state')
        batch_op.create_index('ix_review_cases_queue_state', ['queue', 'state', 'severity', 'reach', 'opened_at'],
                              unique=False)
        batch_op.drop_column('rank_at')
        batch_op.drop_column('escalation_note')
        batch_op.drop_column('escalated')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('reveal_media')
    op.drop_table('media_previews')
