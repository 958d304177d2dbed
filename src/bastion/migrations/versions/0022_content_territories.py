"""moderation: where a content item is disabled (territorial restrictions), for the feed gate and the platform

Revision ID: 0022
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('content_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('territories', sa.JSON(), server_default='[]', nullable=False))
    # Content disabled in territories before this column: the territories of every action that disabled it.
    bind = op.get_bind()
    items = sa.table('content_items', sa.column('content_id', sa.String), sa.column('restrictions', sa.JSON),
                     sa.column('territories', sa.JSON))
    events = sa.table('moderation_events', sa.column('id', sa.BigInteger), sa.column('subject', sa.String),
                      sa.column('kind', sa.String), sa.column('data', sa.JSON))
    for content_id, restrictions in bind.execute(sa.select(items.c.content_id, items.c.restrictions)).all():
        held = json.loads(restrictions) if isinstance(restrictions, str) else (restrictions or [])
        if 'disable_in_territories' not in held:
            continue
        found: set[str] = set()
        for (data,) in bind.execute(sa.select(events.c.data).where(
                events.c.subject == f'content:{content_id}', events.c.kind == 'content.actions_applied')):
            payload = json.loads(data) if isinstance(data, str) else data
            if 'disable_in_territories' in payload.get('actions', []):
                found |= {str(t).upper() for t in payload.get('territories', [])}
        bind.execute(items.update().where(items.c.content_id == content_id).values(territories=sorted(found)))


def downgrade() -> None:
    with op.batch_alter_table('content_items', schema=None) as batch_op:
        batch_op.drop_column('territories')
