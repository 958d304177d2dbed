"""transparency: the moderation log counted again, for the facts of the automated means' misses

A new fact, ``automated_missed`` (an action by a person or an order on content the upload policy let through), is
read from moderation events already counted. Its figures (recall and accuracy of automated means, DSA report Part 8)
would be wrong for every period counted before this revision, so the moderation log's roll-ups and cuts (monthly and
daily) are dropped and its mark set back to the start: the worker counts the whole log again, in its ordinary rounds
(one transaction each: a crash loses nothing). Until it has caught up, ``counted_up_to`` shows how far it is. The
order and report logs are left as they are. No schema change.

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0026'
branch_labels = None
depends_on = None

#: The metrics the moderation log gives (``moderation.queries.FactKind`` when this revision was written; the new
#: one too, in case a worker of this version counted before the upgrade ran: it is counted again like the rest).
MODERATION_METRICS = ('upload', 'action', 'notice', 'notice_handled', 'notice_actioned', 'appeal_filed',
                      'appeal_decided', 'suspension', 'reversal', 'automated_missed')


def upgrade() -> None:
    c = sa.column
    names = [*MODERATION_METRICS, *(f'{m}#h' for m in MODERATION_METRICS)]  # a cut's duration histograms
    for name in ('transparency_rollups', 'transparency_cuts', 'transparency_day_cuts'):
        rows = sa.table(name, c('metric'))
        op.execute(sa.delete(rows).where(rows.c.metric.in_(names)))
    marks = sa.table('transparency_marks', c('log'), c('last_id'))
    op.execute(sa.update(marks).where(marks.c.log == 'moderation_events').values(last_id=0))


def downgrade() -> None:
    """Nothing to undo: the worker's recount gives the same rows, with the new fact's besides."""
