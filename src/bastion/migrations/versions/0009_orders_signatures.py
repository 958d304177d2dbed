"""removal orders: the issuing authority's own signature kept with the hub's order (Annex I section E)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('hub_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authority_key_id', sa.String(length=16), server_default='', nullable=False))
        batch_op.add_column(sa.Column('authority_signature', sa.String(length=400), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('authority_signed_body', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('hub_orders', schema=None) as batch_op:
        batch_op.drop_column('authority_signed_body')
        batch_op.drop_column('authority_signature')
        batch_op.drop_column('authority_key_id')
