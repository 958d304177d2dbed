from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.hashing.interfaces import HashResult
from bastion.hashing.pdq_index import PdqIndex
from bastion.matching import services as banks
from bastion.matching.matcher import Matcher, Query

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def flip(value: str, bits: int) -> str:
    n = int(value, 16)
    for i in range(bits):
        n ^= 1 << (i * 7)
    return f"{n:064x}"


def far(value: str, offset: int) -> str:
    """``value`` with 40 bits flipped (positions offset, offset + 6, ...): unmatched at threshold 31."""
    n = int(value, 16)
    for i in range(40):
        n ^= 1 << (i * 6 + offset)
    return f"{n:064x}"


def pdq_query(value: str, quality: int = 100) -> list[Query]:
    return [Query(HashResult("pdq", value, quality))]


def test_entry_added_in_one_process_is_matched_by_another(db: Database, admin: Principal) -> None:
    other = Database(db.url)
    a, b = Matcher(db), Matcher(other)
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    a.load()
    b.load()
    assert a.match(pdq_query(PDQ)) == []
    entry = banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse("pdq", PDQ, "tco"), actor=admin)
    assert b.match(pdq_query(PDQ)) == []  # not yet replayed
    assert b.refresh() == 1
    (m,) = b.match(pdq_query(flip(PDQ, 5)))
    assert (m.bank, m.entry_id, m.category, m.distance) == ("TERRORIST_CONTENT", entry.id, "tco", 5)
    banks.remove_entry(db, "TERRORIST_CONTENT", entry.id, actor=admin)
    b.refresh()
    assert b.match(pdq_query(PDQ)) == []
    other.dispose()


def test_thresholds_quality_and_bank_state(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "STRICT", actor=admin, thresholds={"pdq": 10})
    banks.create_bank(db, "LOOSE", actor=admin)
    banks.add_entry(db, "STRICT", banks.NewEntry.parse("pdq", PDQ), actor=admin)
    banks.add_entry(db, "LOOSE", banks.NewEntry.parse("pdq", PDQ), actor=admin)
    matcher = Matcher(db)
    matcher.load()
    assert {m.bank for m in matcher.match(pdq_query(flip(PDQ, 8)))} == {"STRICT", "LOOSE"}
    assert {m.bank for m in matcher.match(pdq_query(flip(PDQ, 20)))} == {"LOOSE"}
    assert matcher.match(pdq_query(flip(PDQ, 32))) == []
    assert matcher.match(pdq_query(PDQ, quality=49)) == []  # low-quality hashes are reported, never matched
    assert {m.bank for m in matcher.match(pdq_query(PDQ), banks={"STRICT"})} == {"STRICT"}
    banks.update_bank(db, "LOOSE", actor=admin, enabled=False)
    matcher.refresh()
    assert {m.bank for m in matcher.match(pdq_query(PDQ))} == {"STRICT"}


def test_variants_only_match_dihedral_banks(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "PLAIN", actor=admin)
    banks.create_bank(db, "MIRRORS", actor=admin, dihedral=True)
    for bank in ("PLAIN", "MIRRORS"):
        banks.add_entry(db, bank, banks.NewEntry.parse("pdq", PDQ), actor=admin)
    matcher = Matcher(db)
    matcher.load()
    assert matcher.wants_variants()
    found = matcher.match([Query(HashResult("pdq", flip(PDQ, 3), 100), variant=True)])
    assert [(m.bank, m.variant) for m in found] == [("MIRRORS", True)]


def test_bulk_import_is_replayed_as_one_change(db: Database, admin: Principal) -> None:
    banks.create_bank(db, "BULK", actor=admin)
    matcher = Matcher(db)
    matcher.load()
    values = [f"{i:064x}" for i in range(1, 2001)]
    csv_text = "signal_type,value\n" + "".join(f"md5,{v[32:]}\n" for v in values[:1000]) + \
        "".join(f"pdq,{v}\n" for v in values[1000:])
    banks.import_csv(db, "BULK", io.StringIO(csv_text), actor=admin)
    assert matcher.refresh() == 1
    assert matcher.sizes()["md5"] == 1000 and matcher.sizes()["pdq"] == 1000
    assert matcher.match([Query(HashResult("md5", values[5][32:]))])[0].bank == "BULK"


def test_refresher_thread_picks_up_a_change_from_another_process(db: Database, admin: Principal) -> None:
    """A real second process (the CLI) adds an entry; this process's refresher thread makes it matchable."""
    banks.create_bank(db, "TERRORIST_CONTENT", actor=admin)
    matcher = Matcher(db)
    matcher.load()
    matcher.start(interval=0.05)
    try:
        csv_path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"bastion-{os.getpid()}.csv")
        with open(csv_path, "w") as f:
            f.write(f"signal_type,value\npdq,{PDQ}\n")
        env = {**os.environ, "BASTION_DATABASE_URL": db.url}
        subprocess.run([sys.executable, "-m", "bastion", "bank", "import", "TERRORIST_CONTENT", csv_path],
                       env=env, check=True, capture_output=True)
        deadline = time.monotonic() + 10  # generous: this asserts eventual visibility, not speed
        while not matcher.match(pdq_query(PDQ)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert matcher.match(pdq_query(PDQ))[0].bank == "TERRORIST_CONTENT"
    finally:
        matcher.stop()


def test_lookups_from_many_threads_while_changes_are_replayed(db: Database, admin: Principal) -> None:
    """Lookups share no lock: four threads match a stable entry (PDQ and MD5) while the log adds and removes others
    and bank settings change; every lookup finds it exactly once, and the replayed changes all land."""
    import threading

    banks.create_bank(db, "STABLE", actor=admin)
    banks.create_bank(db, "CHURN", actor=admin)
    md5 = "0123456789abcdef" * 2
    banks.add_entry(db, "STABLE", banks.NewEntry.parse("pdq", PDQ), actor=admin)
    banks.add_entry(db, "STABLE", banks.NewEntry.parse("md5", md5), actor=admin)
    matcher = Matcher(db)
    matcher.load()
    stop = threading.Event()
    errors: list[str] = []
    looked = [0]

    def lookups() -> None:
        query = [*pdq_query(flip(PDQ, 3)), Query(HashResult("md5", md5))]
        while not stop.is_set():
            found = [(m.bank, m.signal_type) for m in matcher.match(query) if m.bank == "STABLE"]
            if sorted(found) != [("STABLE", "md5"), ("STABLE", "pdq")]:
                errors.append(repr(found))
            looked[0] += 1

    threads = [threading.Thread(target=lookups) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        added = []
        for i in range(40):
            value = f"{i + 1:064x}"
            added.append(banks.add_entry(db, "CHURN", banks.NewEntry.parse("pdq", value), actor=admin).id)
            banks.add_entry(db, "CHURN", banks.NewEntry.parse("md5", value[32:]), actor=admin)
            if i % 2:
                banks.remove_entry(db, "CHURN", added[-2], actor=admin)
            if i % 10 == 0:
                banks.update_bank(db, "CHURN", actor=admin, thresholds={"pdq": 10 + i % 20})
            matcher.refresh()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:5]
    assert looked[0] > 0
    assert matcher.sizes()["pdq"] == 1 + 20 and matcher.sizes()["md5"] == 1 + 40
    assert matcher.lag() == 0


def test_a_restart_serves_from_the_snapshot_and_catches_up_from_the_log(
        db: Database, admin: Principal, tmp_path: Path) -> None:
    """The snapshot is memory-mapped, not rebuilt; changes logged after it (an add, a removal) are replayed."""
    snap = tmp_path / "pdq-snapshot"
    banks.create_bank(db, "SNAP", actor=admin)
    before = banks.add_entry(db, "SNAP", banks.NewEntry.parse("pdq", PDQ), actor=admin)
    gone = banks.add_entry(db, "SNAP", banks.NewEntry.parse("pdq", far(PDQ, 1)), actor=admin)
    banks.add_entry(db, "SNAP", banks.NewEntry.parse("md5", "ab" * 16), actor=admin)
    first = Matcher(db, snap)
    first.load()
    meta = first.save_snapshot()
    assert meta["rows"] == 2 and meta["change_id"] == first.freshness.applied_change_id
    after = banks.add_entry(db, "SNAP", banks.NewEntry.parse("pdq", far(PDQ, 3)), actor=admin)
    banks.remove_entry(db, "SNAP", gone.id, actor=admin)

    restarted = Matcher(db, snap)
    restarted.load()
    pdq = restarted.indexes["pdq"]
    assert isinstance(pdq, PdqIndex) and pdq._segments[0].tables.borrowed
    assert restarted.freshness.applied_change_id == first.freshness.applied_change_id + 2 and restarted.lag() == 0
    assert [m.entry_id for m in restarted.match(pdq_query(flip(PDQ, 2)))] == [before.id]
    assert [m.entry_id for m in restarted.match(pdq_query(far(PDQ, 3)))] == [after.id]
    assert restarted.match(pdq_query(far(PDQ, 1))) == []
    assert restarted.match([Query(HashResult("md5", "ab" * 16))])[0].bank == "SNAP"  # streamed as before


def test_a_snapshot_ahead_of_the_log_is_ignored(db: Database, admin: Principal, tmp_path: Path) -> None:
    """Another database's snapshot (its change id past this log's end) is not trusted: the load is in full."""
    snap = tmp_path / "pdq-snapshot"
    index = PdqIndex()
    index.add(999_999, PDQ)
    index.save_snapshot(snap, {"change_id": 10**9})
    banks.create_bank(db, "FULL", actor=admin)
    entry = banks.add_entry(db, "FULL", banks.NewEntry.parse("pdq", PDQ), actor=admin)
    matcher = Matcher(db, snap)
    matcher.load()
    assert [m.entry_id for m in matcher.match(pdq_query(PDQ))] == [entry.id]


def test_a_running_matcher_picks_up_every_chunk_of_a_large_import(db: Database, admin: Principal,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks checked a column at a time, line by line and by the csv module all land under the one ``add_range``
    row that a matcher already running follows."""
    monkeypatch.setattr(banks, "IMPORT_CHUNK", 7)
    monkeypatch.setattr(banks, "IMPORT_FLUSH_LINES", 14)
    banks.create_bank(db, "BULK", actor=admin)
    matcher = Matcher(db)
    matcher.load()
    matcher.start(interval=0.05)
    try:
        values = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(40)]  # random: far apart
        lines = [f"pdq,{v},tco," for v in values[:20]] + [f"pdq,{values[20].upper()},tco,", ""]
        lines += [f"pdq,{v},tco," for v in values[21:30]] + [f'pdq,{values[30]},tco,"a, b"']
        lines += [f"pdq,{v},tco," for v in values[31:]]
        banks.import_csv(db, "BULK", io.StringIO("signal_type,value,category,note\n" + "\n".join(lines)),
                         actor=admin)
        deadline = time.monotonic() + 10  # generous: this asserts eventual visibility, not speed
        while matcher.sizes().get("pdq", 0) < len(values) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        matcher.stop()
    assert matcher.sizes()["pdq"] == len(values)
    for value in (values[0], values[20], values[30], values[-1]):
        assert [(m.bank, m.distance) for m in matcher.match(pdq_query(value))] == [("BULK", 0)]
