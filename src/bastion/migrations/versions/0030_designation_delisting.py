"""designations: an entity taken off the list keeps its record and history, with the date it was delisted

Revision ID: 0030
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('designated_entities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delisted_on', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('designated_entities', schema=None) as batch_op:
        batch_op.drop_column('delisted_on')
