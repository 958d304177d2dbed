"""factchecks and designations: partners, items sent, ratings, designated entities and changes of category, and
the two domains' event logs

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0021'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('designated_entities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('designating_body', sa.String(length=200), nullable=False),
    sa.Column('designated_on', sa.Date(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('banks', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_designated_entities')),
    sa.UniqueConstraint('name', name=op.f('uq_designated_entities_name'))
    )
    op.create_table('designation_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entity_id', sa.BigInteger(), nullable=False),
    sa.Column('from_category', sa.String(length=64), nullable=False),
    sa.Column('to_category', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('preview', sa.JSON(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('proposed_by', sa.String(length=200), nullable=False),
    sa.Column('proposed_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', bastion.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_designation_changes'))
    )
    with op.batch_alter_table('designation_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_designation_changes_entity_id'), ['entity_id'], unique=False)

    op.create_table('designation_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject', sa.String(length=260), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_designation_events')),
    sa.UniqueConstraint('external_id', name=op.f('uq_designation_events_external_id'))
    )
    with op.batch_alter_table('designation_events', schema=None) as batch_op:
        batch_op.create_index('ix_designation_events_subject', ['subject', 'id'], unique=False)

    op.create_table('factcheck_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject', sa.String(length=260), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_factcheck_events')),
    sa.UniqueConstraint('external_id', name=op.f('uq_factcheck_events_external_id'))
    )
    with op.batch_alter_table('factcheck_events', schema=None) as batch_op:
        batch_op.create_index('ix_factcheck_events_subject', ['subject', 'id'], unique=False)

    op.create_table('factcheck_partners',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.String(length=100), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_factcheck_partners')),
    sa.UniqueConstraint('key_id', name=op.f('uq_factcheck_partners_key_id'))
    )
    op.create_table('factcheck_ratings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner', sa.String(length=100), nullable=False),
    sa.Column('rating_id', sa.String(length=200), nullable=False),
    sa.Column('content_id', sa.String(length=200), nullable=False),
    sa.Column('rating', sa.String(length=32), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=False),
    sa.Column('received_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_factcheck_ratings')),
    sa.UniqueConstraint('partner', 'rating_id', name='uq_factcheck_ratings_partner_rating')
    )
    with op.batch_alter_table('factcheck_ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_factcheck_ratings_content_id'), ['content_id'], unique=False)

    op.create_table('factcheck_requests',
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('partner', sa.String(length=100), nullable=False),
    sa.Column('content_id', sa.String(length=200), nullable=False),
    sa.Column('sent_by', sa.String(length=200), nullable=False),
    sa.Column('sent_at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_factcheck_requests'))
    )
    with op.batch_alter_table('factcheck_requests', schema=None) as batch_op:
        batch_op.create_index('ix_factcheck_requests_partner_content', ['partner', 'content_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('factcheck_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_factcheck_requests_partner_content')

    op.drop_table('factcheck_requests')
    with op.batch_alter_table('factcheck_ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_factcheck_ratings_content_id'))

    op.drop_table('factcheck_ratings')
    op.drop_table('factcheck_partners')
    with op.batch_alter_table('factcheck_events', schema=None) as batch_op:
        batch_op.drop_index('ix_factcheck_events_subject')

    op.drop_table('factcheck_events')
    with op.batch_alter_table('designation_events', schema=None) as batch_op:
        batch_op.drop_index('ix_designation_events_subject')

    op.drop_table('designation_events')
    with op.batch_alter_table('designation_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_designation_changes_entity_id'))

    op.drop_table('designation_changes')
    op.drop_table('designated_entities')
