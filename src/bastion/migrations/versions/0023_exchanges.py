"""exchanges: configured hash exchanges with their checkpoints; where each bank entry came from; cursors

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0023'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exchanges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('bank_id', sa.Integer(), nullable=False),
    sa.Column('signal_types', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('entry_category', sa.String(length=64), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('credentials_env', sa.String(length=100), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('checkpoint', sa.JSON(), nullable=True),
    sa.Column('checkpoint_version', sa.Integer(), nullable=False),
    sa.Column('last_fetch_at', bastion.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', bastion.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('records_fetched', sa.BigInteger(), nullable=False),
    sa.Column('entries_added', sa.BigInteger(), nullable=False),
    sa.Column('entries_removed', sa.BigInteger(), nullable=False),
    sa.Column('created_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['bank_id'], ['banks.id'], name=op.f('fk_exchanges_bank_id_banks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchanges')),
    sa.UniqueConstraint('name', name=op.f('uq_exchanges_name'))
    )
    with op.batch_alter_table('exchanges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exchanges_bank_id'), ['bank_id'], unique=False)

    op.create_table('exchange_cursors',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_exchange_cursors'))
    )

    op.create_table('bank_entry_origins',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('exchange', sa.String(length=64), nullable=False),
    sa.Column('record', sa.String(length=300), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['bank_entries.id'], name=op.f('fk_bank_entry_origins_entry_id_bank_entries'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_entry_origins')),
    sa.UniqueConstraint('entry_id', 'exchange', 'record', name='uq_bank_entry_origins')
    )
    with op.batch_alter_table('bank_entry_origins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_entry_origins_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index('ix_bank_entry_origins_record', ['exchange', 'record'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bank_entry_origins', schema=None) as batch_op:
        batch_op.drop_index('ix_bank_entry_origins_record')
        batch_op.drop_index(batch_op.f('ix_bank_entry_origins_entry_id'))
    op.drop_table('bank_entry_origins')
    op.drop_table('exchange_cursors')
    with op.batch_alter_table('exchanges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exchanges_bank_id'))
    op.drop_table('exchanges')
