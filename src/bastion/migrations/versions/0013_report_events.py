"""child-safety reports: their history as an event log (report_events), backfilled from the reports' state

Each report gets a drafted event (at its creation), a sent event (when it was sent) and, for each delivery past
queued, the event of its current state (at its last update): what the rows knew. Earlier steps stay in the audit log.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import bastion.core.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_DELIVERY_KINDS = {"submitted": "delivery.submitted", "finished": "delivery.finished", "failed": "delivery.failed",
                   "retracted": "delivery.retracted"}
ACTOR = "system:migration"


def _events() -> sa.TableClause:
    return sa.table('report_events', sa.column('subject', sa.String), sa.column('kind', sa.String),
                    sa.column('actor', sa.String), sa.column('data', sa.JSON),
                    sa.column('at', bastion.core.db.UTCDateTime(timezone=True)))


def _backfill() -> None:
    conn = op.get_bind()
    reports = sa.table('child_safety_reports', sa.column('id'), sa.column('account_id'), sa.column('trigger'),
                       sa.column('fingerprint'), sa.column('created_at', bastion.core.db.UTCDateTime(timezone=True)),
                       sa.column('sent_at', bastion.core.db.UTCDateTime(timezone=True)), sa.column('sent_by'))
    deliveries = sa.table('report_deliveries', sa.column('id'), sa.column('report_id'), sa.column('centre'),
                          sa.column('state'), sa.column('remote_id'), sa.column('error'),
                          sa.column('updated_at', bastion.core.db.UTCDateTime(timezone=True)))
    by_report: dict[str, list[Any]] = {}
    for d in conn.execute(sa.select(deliveries).order_by(deliveries.c.id)):
        by_report.setdefault(d.report_id, []).append(d)
    rows: list[dict[str, Any]] = []
    for r in conn.execute(sa.select(reports).order_by(reports.c.created_at, reports.c.id)):
        rows.append({"subject": r.id, "kind": "report.drafted", "actor": ACTOR, "at": r.created_at,
                     "data": {"account_id": r.account_id, "trigger": r.trigger}})
        sent = by_report.get(r.id, [])
        if r.sent_at is not None:
            rows.append({"subject": r.id, "kind": "report.sent", "actor": r.sent_by or ACTOR, "at": r.sent_at,
                         "data": {"centres": [d.centre for d in sent], "fingerprint": r.fingerprint}})
        for d in sent:
            if d.state in _DELIVERY_KINDS:
                rows.append({"subject": r.id, "kind": _DELIVERY_KINDS[d.state], "actor": ACTOR, "at": d.updated_at,
                             "data": {"centre": d.centre, "remote_id": d.remote_id, "error": d.error}})
    if rows:
        op.bulk_insert(_events(), rows)


def upgrade() -> None:
    op.create_table('report_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject', sa.String(length=260), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('at', bastion.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_events')),
    sa.UniqueConstraint('external_id', name=op.f('uq_report_events_external_id'))
    )
    with op.batch_alter_table('report_events', schema=None) as batch_op:
        batch_op.create_index('ix_report_events_subject', ['subject', 'id'], unique=False)
    _backfill()


def downgrade() -> None:
    with op.batch_alter_table('report_events', schema=None) as batch_op:
        batch_op.drop_index('ix_report_events_subject')

    op.drop_table('report_events')
