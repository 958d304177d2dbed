from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import delete, select, update

from bastion.core.audit import services as audit
from bastion.core.audit.models import AuditEntry
from bastion.core.db import Database


def _append(db: Database, n: int) -> None:
    for i in range(n):
        with db.write() as session:
            audit.record(db, session, actor="tester", action=audit.AuditAction.SETTING_CHANGED,
                         subject=f"setting:{i}", details={"value": i})


def test_intact_chain_verifies(db: Database) -> None:
    _append(db, 5)
    result = audit.verify(db)
    assert result.ok and result.checked == 5


def test_altered_entry_is_found(db: Database) -> None:
    _append(db, 5)
    with db.write() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == 3).values(actor="someone else"))
    result = audit.verify(db)
    assert not result.ok
    assert [p.entry_id for p in result.problems] == [3]
    assert "altered" in result.problems[0].reason


def test_deleted_entry_is_found(db: Database) -> None:
    _append(db, 5)
    with db.write() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id == 2))
    result = audit.verify(db)
    assert not result.ok
    assert result.problems[0].entry_id == 3
    assert "missing" in result.problems[0].reason


def test_rolled_back_change_leaves_no_entry(db: Database) -> None:
    try:
        with db.write() as session:
            audit.record(db, session, actor="t", action=audit.AuditAction.SETTING_CHANGED, subject="s")
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    assert audit.verify(db).checked == 0


def test_concurrent_writers_keep_one_unbroken_chain(db: Database) -> None:
    """Eight threads append at once; ids and links must still form a single chain (advisory lock on PostgreSQL)."""
    import threading

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                with db.write() as session:
                    audit.record(db, session, actor=f"t{n}", action=audit.AuditAction.SETTING_CHANGED,
                                 subject=f"s{n}.{i}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = audit.verify(db)
    assert result.ok and result.checked == 80


KEY = b"k" * 32


def test_cutting_off_the_last_entries_passes_the_chain_but_not_a_checkpoint(db: Database) -> None:
    _append(db, 5)
    mark = audit.checkpoint(db, KEY)
    assert (mark.seq, audit.verify(db, [mark], KEY).ok) == (5, True)
    with db.write() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id >= 4))
    assert audit.verify(db).ok  # the chain alone still fits
    result = audit.verify(db, [mark], KEY)
    assert [p.entry_id for p in result.problems] == [5]
    assert "cut back" in result.problems[0].reason and "ends at entry 3" in result.problems[0].reason


def _rewrite(db: Database, entry_id: int, actor: str) -> None:
    """What an attacker with database write access does: edit an entry and recompute every hash from it on."""
    with db.write() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        prev = audit.GENESIS
        for entry in entries:
            if entry.id == entry_id:
                entry.actor = actor
            entry.prev_hash = prev
            entry.entry_hash = audit._digest(prev, entry)
            prev = entry.entry_hash


def test_an_entry_rewritten_with_its_chain_recomputed_passes_the_chain_but_not_a_checkpoint(db: Database) -> None:
    _append(db, 5)
    mark = audit.checkpoint(db, KEY)
    _rewrite(db, 2, "someone else")
    assert audit.verify(db).ok
    result = audit.verify(db, [mark], KEY)
    assert [p.entry_id for p in result.problems] == [5]
    assert "rewritten" in result.problems[0].reason


def test_a_forged_checkpoint_is_refused_and_checks_nothing(db: Database) -> None:
    _append(db, 3)
    mark = audit.checkpoint(db, KEY)
    _rewrite(db, 1, "someone else")
    forged = replace(mark, head=audit.checkpoint(db, b"x" * 32).head)  # the new head, MAC'd without the key
    result = audit.verify(db, [forged], KEY)
    assert [p.entry_id for p in result.problems] == [3]
    assert "not genuine" in result.problems[0].reason
    assert not audit.verify(db, [mark], b"another key, 32 bytes long......").ok


def test_checkpoints_round_trip_through_a_file_and_later_entries_still_verify(db: Database) -> None:
    _append(db, 2)
    first = audit.checkpoint(db, KEY)
    _append(db, 3)
    second = audit.checkpoint(db, KEY)
    _append(db, 1)  # after the last checkpoint: covered by the chain only
    text = first.to_line() + "\n\n" + second.to_line() + "\n"
    assert audit.read_checkpoints(text) == [first, second]
    assert audit.verify(db, audit.read_checkpoints(text), KEY).ok


def test_an_empty_log_has_a_checkpoint_too(db: Database) -> None:
    mark = audit.checkpoint(db, KEY)
    assert (mark.seq, mark.head) == (0, audit.GENESIS)
    assert audit.verify(db, [mark], KEY).ok


@pytest.mark.parametrize(("line", "reason"), [
    ("nonsense", "line 1: not JSON"),
    ("[1]", "not a JSON object"),
    ('{"seq": -1, "head": "a", "at": "b", "mac": "c"}', "seq must be"),
    ('{"seq": 1, "head": "", "at": "b", "mac": "c"}', "non-empty"),
])
def test_a_bad_checkpoint_line_is_a_clear_error(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        audit.read_checkpoints(line)
