"""transparency: researchers' releases, each closed month's suppressed answers and dashboard computed once and kept

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'transparency_releases',
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('min_cell', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('charts', sa.JSON(), nullable=False),
        sa.Column('made_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('month', 'min_cell', 'version'),
    )


def downgrade() -> None:
    op.drop_table('transparency_releases')
