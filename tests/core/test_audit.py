from __future__ import annotations

from sqlalchemy import delete, update

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
