from __future__ import annotations

import csv
import io
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from bastion.core.audit import services as audit
from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.matching import services as banks
from bastion.matching.interfaces import (
    BankExists,
    BankNotFound,
    CsvImportError,
    DuplicateEntry,
    InvalidBank,
    InvalidEntry,
    RestrictedBank,
)
from bastion.matching.models import BankChange, BankEntry

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "0" * 63 + "1"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
MODERATOR = Principal("token", 9, "mod", Role.MODERATOR)


def _count(db: Database, model: type) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_create_bank_validates_name_and_thresholds(db: Database, admin: Principal) -> None:
    with pytest.raises(InvalidBank, match="capital letters"):
        banks.create_bank(db, "lower case", actor=admin)
    with pytest.raises(InvalidBank, match="unknown signal type 'nope'"):
        banks.create_bank(db, "OK_NAME", actor=admin, thresholds={"nope": 3})
    with pytest.raises(InvalidBank, match="threshold for pdq"):
        banks.create_bank(db, "OK_NAME", actor=admin, thresholds={"pdq": 999})
    banks.create_bank(db, "OK_NAME", actor=admin, thresholds={"pdq": 20})
    with pytest.raises(BankExists):
        banks.create_bank(db, "OK_NAME", actor=admin)
    assert audit.verify(db).checked == 1


def test_add_entry_canonicalises_and_logs(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    entry = banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse("pdq", PDQ_A.upper(), "tco"), actor=admin)
    assert entry.value == PDQ_A
    with pytest.raises(DuplicateEntry):
        banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse("pdq", PDQ_A), actor=admin)
    with db.read() as session:
        ops = [c.op for c in session.scalars(select(BankChange).order_by(BankChange.id))]
    assert ops == ["bank", "add"]


@pytest.mark.parametrize(("signal_type", "value", "message"), [
    ("pdq", "abc", "64"),
    ("pdq", "z" * 64, "hex"),
    ("md5", "", "empty"),
    ("nope", "x", "unknown signal type"),
])
def test_bad_entries_are_refused(signal_type: str, value: str, message: str) -> None:
    with pytest.raises(InvalidEntry, match=message):
        banks.NewEntry.parse(signal_type, value)


def test_restricted_bank_is_closed_to_other_roles(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "CSAM_KNOWN", actor=admin, restricted=True)
    # closed as if it did not exist: the same error as an unknown bank, so no one learns it is there
    with pytest.raises(BankNotFound, match="no bank named 'CSAM_KNOWN'"):
        banks.add_entry(db, "CSAM_KNOWN", banks.NewEntry.parse("md5", MD5), actor=MODERATOR)
    with pytest.raises(BankNotFound, match="no bank named 'CSAM_KNOWN'"):
        list(banks.export_rows(db, "CSAM_KNOWN", actor=MODERATOR))
    with pytest.raises(RestrictedBank):
        banks.create_bank(db, "CSAM_TWO", actor=MODERATOR, restricted=True)
    assert _count(db, BankEntry) == 0


def test_import_and_export_round_trip(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    csv_text = (
        "signal_type,value,category,source,note\n"
        f"pdq,{PDQ_A},tco,gifct,first\n"
        f"pdq,{PDQ_B},tco,gifct,\"quoted, with comma\"\n"
        f"md5,{MD5.upper()},tco,,\n"
        f"pdq,{PDQ_A},tco,gifct,duplicate line\n"
        "\n"
    )
    result = banks.import_csv(db, "TERRORIST_CONTENT", io.StringIO(csv_text), actor=admin)
    assert (result.lines, result.added, result.duplicates) == (4, 3, 1)
    assert result.by_signal_type == {"pdq": 3, "md5": 1}
    exported = "".join(banks.csv_lines(banks.export_rows(db, "TERRORIST_CONTENT", actor=admin)))
    lines = exported.splitlines()
    assert lines[0] == "signal_type,value,category,source,note"
    assert lines[1:] == [f"pdq,{PDQ_A},tco,gifct,first", f'pdq,{PDQ_B},tco,gifct,"quoted, with comma"',
                         f"md5,{MD5},tco,,"]
    with db.read() as session:
        change = session.scalars(select(BankChange).where(BankChange.op == "add_range")).one()
    assert change.last_entry_id is not None and change.entry_id is not None
    assert change.last_entry_id - change.entry_id + 1 >= 3


@pytest.mark.parametrize(("body", "line", "reason"), [
    ("", 1, "empty"),
    ("value,signal_type,colour\n", 1, "header"),
    ("signal_type\npdq\n", 1, "header"),
    (f"signal_type,value\npdq,{PDQ_A}\npdq,{PDQ_A[:-1]}\n", 3, "64 hex digits"),
    (f"signal_type,value\npdq,{PDQ_A}\nmd5,{MD5},extra\n", 3, "expected 2 fields"),
    (f"signal_type,value\nsha1,{MD5}\n", 2, "unknown signal type"),
    ("signal_type,value\npdq,\"unterminated\n", 2, ""),
])
def test_bad_import_changes_nothing(db: Database, admin: Principal, body: str, line: int, reason: str) -> None:
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    entries, changes, audits = _count(db, BankEntry), _count(db, BankChange), audit.verify(db).checked
    with pytest.raises(CsvImportError) as info:
        banks.import_csv(db, "TERRORIST_CONTENT", io.StringIO(body), actor=admin)
    assert info.value.line == line
    assert reason in info.value.reason
    assert (_count(db, BankEntry), _count(db, BankChange), audit.verify(db).checked) == (entries, changes, audits)


def test_import_into_unknown_bank(db: Database, admin: Principal) -> None:
    with pytest.raises(BankNotFound):
        banks.import_csv(db, "NOPE", io.StringIO("signal_type,value\n"), actor=admin)


def test_remove_and_disable_entries(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "B1", actor=admin)
    e1 = banks.add_entry(db, "B1", banks.NewEntry.parse("md5", MD5), actor=admin)
    e2 = banks.add_entry(db, "B1", banks.NewEntry.parse("pdq", PDQ_A), actor=admin)
    banks.remove_entry(db, "B1", e1.id, actor=admin)
    banks.set_entry_enabled(db, "B1", e2.id, False, actor=admin)
    exported = list(banks.export_rows(db, "B1", actor=admin))
    assert exported == [list(banks.CSV_HEADER)]
    with db.read() as session:
        summary = banks.list_banks(session)
    assert summary[0].entries == 0
    assert audit.verify(db).ok


# --- bulk import: chunks checked a column at a time, or line by line where they must be ---------------------------

def _pdq(n: int) -> str:
    return f"{n:064x}"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Chunks of four lines, so a few lines cross several chunks (and both readings); PostgreSQL writes two
    chunks at a time, so duplicates meet both within one write and across writes, and the last is a partial one."""
    monkeypatch.setattr(banks, "IMPORT_CHUNK", 4)
    monkeypatch.setattr(banks, "IMPORT_FLUSH_LINES", 8)
    return 4


@pytest.mark.parametrize(("bad", "reason"), [
    (f"pdq,{_pdq(1)[:-1]}g,tco", "hex digits"),
    (f"pdq,{_pdq(1)[:-1]},tco", "64 hex digits"),
    (f"pdq,{_pdq(1)},tco,extra", "expected 3 fields"),
    (f"sha1,{_pdq(1)},tco", "unknown signal type"),
    (f"pdq,{_pdq(1)},{'c' * 65}", "category is longer than 64"),
    (f"pdq,{_pdq(1)},csam_a1", "restricted bank"),
    (f'pdq,"{_pdq(1)}', "expected 3 fields"),  # the quote runs to the end of the file
])
def test_a_bad_line_in_the_middle_refuses_the_whole_import(db: Database, admin: Principal, small_chunks: int,
                                                           bad: str, reason: str) -> None:
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse("pdq", _pdq(999)), actor=admin)
    lines = [f"pdq,{_pdq(n)},tco" for n in range(100, 120)]
    lines.insert(10, bad)  # the 11th entry: file line 12, in the third chunk
    body = "signal_type,value,category\n" + "\n".join(lines) + "\n"
    entries, changes, audits = _count(db, BankEntry), _count(db, BankChange), audit.verify(db).checked
    with pytest.raises(CsvImportError) as info:
        banks.import_csv(db, "TERRORIST_CONTENT", io.StringIO(body), actor=admin)
    assert (info.value.line, reason in info.value.reason) == (12, True), info.value
    assert (_count(db, BankEntry), _count(db, BankChange), audit.verify(db).checked) == (entries, changes, audits)
    assert not [t for t in threading.enumerate() if t.name == "bastion-import-reader"]


def test_a_failed_write_stops_the_reader_and_keeps_nothing(db: Database, admin: Principal, small_chunks: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The database fails on the third chunk (a crash, a lost connection): the reader thread, reading ahead,
    stops, and the chunks already written roll back with the rest."""
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    write, calls = banks._write_chunk, []

    def failing(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("connection lost")
        return write(*args, **kwargs)

    monkeypatch.setattr(banks, "_write_chunk", failing)
    body = "signal_type,value\n" + "".join(f"pdq,{_pdq(n)}\n" for n in range(1, 200))
    entries, changes = _count(db, BankEntry), _count(db, BankChange)
    with pytest.raises(OSError, match="connection lost"):
        banks.import_csv(db, "TERRORIST_CONTENT", io.StringIO(body), actor=admin)
    assert (_count(db, BankEntry), _count(db, BankChange)) == (entries, changes)
    assert not [t for t in threading.enumerate() if t.name == "bastion-import-reader"]


def test_import_reads_every_line_as_line_by_line_would(db: Database, admin: Principal, small_chunks: int) -> None:
    """Canonicalised values, blank lines, CRLF, mixed types, duplicates (of the bank's and of earlier lines, in
    other chunks) and a quoted field late in the file: the same entries as one line at a time."""
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse("pdq", _pdq(3), "tco"), actor=admin)
    lines = [f"pdq,{_pdq(n)},tco,gifct," for n in range(1, 9)]
    lines += [f"pdq ,{_pdq(9)},tco,,", f"pdq, {_pdq(10).upper()} ,tco ,,", "", " , , , , ",
              f"md5,{MD5},,,", f"pdq,{_pdq(1)},tco,gifct,again", f"pdq,{_pdq(11)},,,back\\slash\ttab"]
    lines += [f"pdq,{_pdq(n)},tco,gifct,\r" for n in range(12, 16)]
    lines += [f'pdq,{_pdq(16)},tco,gifct,"quoted, with comma"', f"pdq,{_pdq(17)},tco,,", f"md5,{MD5},,,"]
    body = "signal_type,value,category,source,note\n" + "\n".join(lines) + "\n"
    result = banks.import_csv(db, "TERRORIST_CONTENT", io.StringIO(body), actor=admin)
    rows = list(csv.reader(io.StringIO(body.replace("\r", ""))))[1:]
    expected = [banks.NewEntry.parse(*row) for row in rows if row and any(c.strip() for c in row)]
    assert (result.lines, result.added, result.duplicates) == (len(expected), 17, len(expected) - 17)
    assert result.by_signal_type == {"pdq": len(expected) - 2, "md5": 2}
    with db.read() as session:
        stored = {(e.signal_type, e.value): (e.category, e.source, e.note, e.value_digest)
                  for e in session.scalars(select(BankEntry))}
    first = {}
    for e in expected:
        first.setdefault((e.signal_type, e.value), (e.category, e.source, e.note, banks.value_digest(e.value)))
    first[("pdq", _pdq(3))] = ("tco", "", "", banks.value_digest(_pdq(3)))  # held before: the import skips it
    assert stored == first
    with db.read() as session:
        change = session.scalars(select(BankChange).where(BankChange.op == "add_range")).one()
    assert change.entry_id is not None and change.last_entry_id is not None


def test_a_duplicate_import_adds_nothing_and_logs_no_range(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    body = "signal_type,value\n" + "".join(f"pdq,{_pdq(n)}\n" for n in range(1, 50))
    assert banks.import_csv(db, "TERRORIST_CONTENT", io.StringIO(body), actor=admin).added == 49
    again = banks.import_csv(db, "TERRORIST_CONTENT", io.StringIO(body), actor=admin)
    assert (again.lines, again.added, again.duplicates) == (49, 0, 49)
    with db.read() as session:
        assert [c.op for c in session.scalars(select(BankChange).order_by(BankChange.id))] == ["bank", "add_range"]
