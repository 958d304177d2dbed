"""reporting: a ``report.repeat_recorded`` event for every repeat upload recorded before the event existed;
minors: the issued statement's ``puid`` on a confirmed under-13 case (so it is submitted to the DSA database)

Transparency counts duplicates avoided from the report events, never from ``report_repeats``; repeats recorded
before this revision get their event now (at the repeat's upload time, the nearest known), so the count covers
them. Idempotent through ``external_id`` (``repeat:<content_id>``).

A confirmed under-13 case's statement of reasons was never submitted: ``statement_puid`` marks it issued, and is
filled here for cases confirmed before (the submission backfill then queues them).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    repeats = bind.execute(sa.text(
        "SELECT r.report_id, r.content_id, r.repeat_of, r.after_sending, r.uploaded_at FROM report_repeats r "
        "WHERE NOT EXISTS (SELECT 1 FROM report_events e WHERE e.external_id = 'repeat:' || r.content_id) "
        "ORDER BY r.id")).all()
    events = sa.table('report_events', sa.column('subject', sa.String), sa.column('kind', sa.String),
                      sa.column('actor', sa.String), sa.column('data', sa.JSON), sa.column('at'),
                      sa.column('external_id', sa.String))
    rows = [{"subject": r.report_id, "kind": "report.repeat_recorded", "actor": "system:migration-0025",
             "data": {"content_id": r.content_id, "repeat_of": r.repeat_of, "after_sending": bool(r.after_sending)},
             "at": r.uploaded_at, "external_id": f"repeat:{r.content_id}"} for r in repeats]
    if rows:
        op.bulk_insert(events, rows)

    with op.batch_alter_table('minor_cases') as batch_op:
        batch_op.add_column(sa.Column('statement_puid', sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint('uq_minor_cases_statement_puid', ['statement_puid'])
    # Statements drafted before the wording changed said the child's age in years: every drafted one (open or
    # confirmed) is written again from how the age was recorded, before any is marked issued and submitted.
    drafted = bind.execute(sa.text(
        "SELECT id, state, statement, detail FROM minor_cases WHERE kind = 'under_13' AND statement IS NOT NULL")).all()
    for case_id, state, statement, detail in drafted:
        body: Any = json.loads(statement) if isinstance(statement, str) else statement
        info: Any = json.loads(detail) if isinstance(detail, str) else (detail or {})
        if not isinstance(body, dict):
            continue
        method = info.get("method") if isinstance(info, dict) else None
        basis = info.get("basis", "") if isinstance(info, dict) else ""
        facts = (f"The account holder's age, as recorded ({basis}{', ' + method if method else ''}), is below the "
                 "minimum age of 13 in the terms of service.")
        body = {**body, "decision_facts": facts, "incompatible_content_explanation": facts}
        puid = str(body["puid"]) if state == "confirmed" and body.get("puid") else None
        bind.execute(sa.text("UPDATE minor_cases SET statement = :statement, statement_puid = :puid WHERE id = :id")
                     .bindparams(sa.bindparam("statement", type_=sa.JSON)),
                     {"statement": body, "puid": puid, "id": case_id})


def downgrade() -> None:
    with op.batch_alter_table('minor_cases') as batch_op:
        batch_op.drop_constraint('uq_minor_cases_statement_puid', type_='unique')
        batch_op.drop_column('statement_puid')
    op.execute("DELETE FROM report_events WHERE kind = 'report.repeat_recorded'")
