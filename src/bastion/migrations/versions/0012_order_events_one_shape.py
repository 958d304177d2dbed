"""order and hub events in the one event shape: the key column is ``subject``, hub events get ``external_id``

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.drop_index('ix_order_events_reference')
        batch_op.alter_column('reference', new_column_name='subject', existing_type=sa.String(length=120),
                              type_=sa.String(length=260), existing_nullable=False)
    with op.batch_alter_table('order_events', schema=None) as batch_op:  # a second batch: the column is renamed now
        batch_op.create_index('ix_order_events_subject', ['subject', 'id'], unique=False)
    with op.batch_alter_table('hub_events', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_events_reference')
        batch_op.alter_column('hub_reference', new_column_name='subject', existing_type=sa.String(length=120),
                              type_=sa.String(length=260), existing_nullable=False)
        batch_op.add_column(sa.Column('external_id', sa.String(length=300), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_hub_events_external_id'), ['external_id'])
    with op.batch_alter_table('hub_events', schema=None) as batch_op:
        batch_op.create_index('ix_hub_events_subject', ['subject', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hub_events', schema=None) as batch_op:
        batch_op.drop_index('ix_hub_events_subject')
        batch_op.drop_constraint(batch_op.f('uq_hub_events_external_id'), type_='unique')
        batch_op.drop_column('external_id')
        batch_op.alter_column('subject', new_column_name='hub_reference', existing_type=sa.String(length=260),
                              type_=sa.String(length=120), existing_nullable=False)
    with op.batch_alter_table('hub_events', schema=None) as batch_op:
        batch_op.create_index('ix_hub_events_reference', ['hub_reference', 'id'], unique=False)
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.drop_index('ix_order_events_subject')
        batch_op.alter_column('subject', new_column_name='reference', existing_type=sa.String(length=260),
                              type_=sa.String(length=120), existing_nullable=False)
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.create_index('ix_order_events_reference', ['reference', 'id'], unique=False)
