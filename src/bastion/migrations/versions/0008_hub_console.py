"""the hub's console: which competent authority each console user acts for

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hub_authority_users',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('authority_id', sa.BigInteger(), nullable=False),
    sa.Column('linked_by', sa.String(length=200), nullable=False),
    sa.Column('linked_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_hub_authority_users'))
    )
    with op.batch_alter_table('hub_authority_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hub_authority_users_authority_id'), ['authority_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hub_authority_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hub_authority_users_authority_id'))

    op.drop_table('hub_authority_users')
