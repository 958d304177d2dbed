"""A report's states move only through ``next_state`` (tested as a table), and every move is an event in its log."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from bastion.core.db import Database, alembic_config, migrate
from bastion.core.events import payload
from bastion.reporting import services
from bastion.reporting.events import (
    DeliveryChanged,
    Drafted,
    RepeatRecorded,
    ReportEventKind,
    Sent,
    allowed_from,
    next_state,
)
from bastion.reporting.interfaces import InvalidTransition, ReportState
from bastion.transparency import metrics
from tests.factories.ncmec import FakeNcmec
from tests.reporting.conftest import SPECIALIST, World

K = ReportEventKind
D, Q, S, F, X, R = (ReportState.DRAFT, ReportState.QUEUED, ReportState.SUBMITTED, ReportState.FINISHED,
                    ReportState.FAILED, ReportState.RETRACTED)
ALL: tuple[ReportState | None, ...] = (None, *ReportState)


def _only(kind: ReportEventKind, moves: dict[ReportState | None, ReportState]) -> list[
        tuple[ReportState | None, ReportEventKind, ReportState | None]]:
    """``kind`` from every state: the state it leads to where allowed, None (refused) everywhere else."""
    return [(s, kind, moves.get(s)) for s in ALL]


# Every (state, kind) pair: the resulting state, or None where the kind is refused in that state.
TABLE = [
    *_only(K.DRAFTED, {None: D}),
    *_only(K.REVISED, {D: D}),
    *_only(K.MATERIAL_SUPPLIED, {D: D}),
    *_only(K.SENT, {D: Q}),
    *_only(K.PURGED, {D: D, F: F, X: X, R: R}),  # never while queued or half-way through NCMEC's procedure
    *_only(K.REPEAT_RECORDED, {D: D, Q: Q, S: S, F: F, X: X, R: R}),  # named by a draft, covered once sent
    *_only(K.SUBMITTED, {Q: S}),
    *_only(K.FINISHED, {Q: F, S: F}),
    *_only(K.FAILED, {Q: X, S: X}),
    *_only(K.RESENT, {X: Q}),
    *_only(K.RESUMED, {X: S}),
    *_only(K.RETRACT_REQUESTED, {S: S, F: F, X: X}),
    *_only(K.RETRACTED, {S: R, F: R, X: R}),
]


@pytest.mark.parametrize(("state", "kind", "expected"), TABLE)
def test_transition_table(state: ReportState | None, kind: ReportEventKind, expected: ReportState | None) -> None:
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            next_state(state, kind)
        assert refused.value.status == 409
    else:
        assert next_state(state, kind) is expected


def test_table_is_complete() -> None:
    assert {(s, k) for s, k, _ in TABLE} == {(s, k) for s in ALL for k in ReportEventKind}


def test_refusals_say_what_to_do() -> None:
    with pytest.raises(InvalidTransition, match="was sent already \\(queued\\); it can no longer change"):
        next_state(Q, K.REVISED)
    with pytest.raises(InvalidTransition, match="only a failed delivery can be sent again \\(it is finished\\)"):
        next_state(F, K.RESENT)


def test_material_in_flight_is_never_purged() -> None:
    assert {"queued", "submitted"} == services.IN_FLIGHT
    assert allowed_from(K.PURGED) == {D, F, X, R}


def test_a_reports_life_is_its_event_log(world: World, fake_ncmec: FakeNcmec) -> None:
    world.known("k-1", "acct-a", seed=1)
    (report_id,) = services.draft_pending(world.rep)
    services.revise(world.rep, report_id, urgent_reason="live abuse", actor=SPECIALIST.actor)
    services.send(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    with pytest.raises(InvalidTransition):  # refused, and nothing recorded
        services.revise(world.rep, report_id, urgent_reason="late", actor=SPECIALIST.actor)
    services.retract(world.rep, report_id, actor=SPECIALIST)
    assert world.deliver().delivered == 1
    with world.rep.db.read() as session:
        events = services.report_history(session, report_id)
        state = services.get_report(session, report_id).state
    assert [e.kind for e in events] == [K.DRAFTED, K.REVISED, K.SENT, K.SUBMITTED, K.FINISHED, K.RETRACT_REQUESTED,
                                        K.RETRACTED]
    assert state == "retracted"
    assert payload(events[0], Drafted).account_id == "acct-a"
    assert payload(events[2], Sent).centres == ["ncmec"] and events[2].actor == SPECIALIST.actor
    ((ncmec_id, _),) = fake_ncmec.reports.items()
    finished = payload(events[4], DeliveryChanged)
    assert finished.centre == "ncmec" and finished.remote_id == str(ncmec_id)
    assert events[4].actor == "system:report-sender"


def test_the_migration_writes_the_history_existing_reports_had(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    migrate(url)
    config = alembic_config(url)
    command.downgrade(config, "0013-1")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO child_safety_reports (id, account_id, account_country, incident_type, incident_at, trigger, "
            "urgent_reason, removed, fingerprint, state, created_at, sent_at, sent_by, preserve_until) VALUES "
            "('r-1', 'acct-a', 'DE', 'csam', '2026-11-01 00:00:00', 'known_hash', '', 1, 'fp', 'finished', "
            "'2026-11-01 00:00:00', '2026-11-02 00:00:00', 'cs-1', '2027-11-01 00:00:00'), "
            "('r-2', 'acct-b', 'DE', 'csam', '2026-11-03 00:00:00', 'specialist', '', 1, 'fp2', 'draft', "
            "'2026-11-03 00:00:00', NULL, '', '2027-11-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO report_deliveries (report_id, centre, fingerprint, state, remote_id, centre_status, error, "
            "document, signature, created_at, updated_at) VALUES ('r-1', 'ncmec', 'fp', 'finished', '42', '', '', "
            "'', '', '2026-11-02 00:00:00', '2026-11-02 01:00:00')"))
    engine.dispose()
    command.upgrade(config, "head")
    db = Database(url)
    try:
        with db.read() as session:
            sent = services.report_history(session, "r-1")
            draft = services.report_history(session, "r-2")
            assert [e.kind for e in sent] == [K.DRAFTED, K.SENT, K.FINISHED]
            assert [e.kind for e in draft] == [K.DRAFTED]
            assert payload(sent[1], Sent).centres == ["ncmec"] and sent[1].actor == "cs-1"
            assert payload(sent[2], DeliveryChanged).remote_id == "42"
    finally:
        db.dispose()


def test_the_migration_gives_repeats_recorded_before_their_event_and_confirmed_under_13_cases_their_puid(
        tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/repeats.db"
    migrate(url)
    config = alembic_config(url)
    command.downgrade(config, "0027")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO child_safety_reports (id, account_id, account_country, incident_type, incident_at, trigger, "
            "urgent_reason, removed, fingerprint, state, created_at, sent_at, sent_by, preserve_until) VALUES "
            "('r-1', 'acct-a', 'DE', 'csam', '2026-11-01 00:00:00', 'known_hash', '', 1, 'fp', 'finished', "
            "'2026-11-01 00:00:00', '2026-11-02 00:00:00', 'cs-1', '2027-11-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO report_repeats (report_id, content_id, repeat_of, uploaded_at, after_sending) VALUES "
            "('r-1', 'k-2', 'k-1', '2026-11-01 03:00:00', 0), ('r-1', 'k-3', 'k-1', '2026-11-05 00:00:00', 1)"))
        conn.execute(text(
            "INSERT INTO minor_cases (account_id, kind, queue, state, detail, statement, opened_at, updated_at) VALUES "
            "('kid', 'under_13', 'q', 'confirmed', '{\"basis\": \"declared\", \"years\": 12}', "
            "'{\"puid\": \"sor-kid\", \"decision_facts\": \"The account''s age is recorded as 12 years.\"}', "
            "'2026-11-01 00:00:00', "
            "'2026-11-01 00:00:00'), ('kid2', 'under_13', 'q', 'dismissed', '{}', '{\"puid\": \"sor-kid2\"}', "
            "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
    engine.dispose()
    command.upgrade(config, "head")
    db = Database(url)
    try:
        with db.read() as session:
            repeats = [payload(e, RepeatRecorded) for e in services.report_history(session, "r-1")
                       if e.kind == K.REPEAT_RECORDED]
            assert [(r.content_id, r.after_sending) for r in repeats] == [("k-2", False), ("k-3", True)]
            puids = session.execute(text("SELECT account_id, statement_puid FROM minor_cases ORDER BY id")).all()
            assert [tuple(p) for p in puids] == [("kid", "sor-kid"), ("kid2", None)]
            # a statement drafted with the old wording said the age: written again before it is ever submitted
            statement = session.execute(text("SELECT statement FROM minor_cases WHERE account_id = 'kid'")).scalar()
            body = json.loads(statement) if isinstance(statement, str) else statement
            assert "12" not in json.dumps(body) and "(declared)" in body["decision_facts"]
            assert body["incompatible_content_explanation"] == body["decision_facts"]
            [f] = metrics.figures(metrics.undated(metrics.direct_cells(session, dt.date(2026, 11, 1),
                                                                       dt.date(2026, 11, 30))))
            assert f.reports_duplicates_avoided == 2
    finally:
        db.dispose()
