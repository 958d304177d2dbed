"""feed: the exchanges a crisis shares its confirmed perpetrator content with

Revision ID: 0027
Revises: 0030
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('crises', schema=None) as batch_op:
        batch_op.add_column(sa.Column('share_with', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('crises', schema=None) as batch_op:
        batch_op.drop_column('share_with')
