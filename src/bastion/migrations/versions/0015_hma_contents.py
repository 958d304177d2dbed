"""hma: one content id for the several signals of a file banked through HMA's API

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hma_contents',
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('content_id', sa.BigInteger(), nullable=False),
    sa.Column('disable_until_ts', sa.BigInteger(), nullable=False),
    sa.Column('original_media_uri', sa.String(length=2000), nullable=True),
    sa.Column('content_metadata', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['bank_entries.id'], name=op.f('fk_hma_contents_entry_id_bank_entries'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('entry_id', name=op.f('pk_hma_contents'))
    )
    with op.batch_alter_table('hma_contents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hma_contents_content_id'), ['content_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hma_contents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hma_contents_content_id'))
    op.drop_table('hma_contents')
