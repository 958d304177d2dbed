"""designations: edits of links and delisting are proposed changes too, confirmed by another person

Revision ID: 0033
Revises: 0031
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('designation_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='category'))
        batch_op.add_column(sa.Column('proposal', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    changes = sa.table('designation_changes', sa.column('kind'), sa.column('state'))
    # an edit or a delisting still proposed cannot be told from a change of category once the kind is gone
    op.execute(sa.update(changes).where(changes.c.kind != 'category', changes.c.state == 'proposed')
               .values(state='superseded'))
    with op.batch_alter_table('designation_changes', schema=None) as batch_op:
        batch_op.drop_column('proposal')
        batch_op.drop_column('kind')
