"""Keeping a bank's entries in the console: search and page with notes, add, import a CSV, remove; by role, with
CSRF, and restricted banks for child-safety roles only."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.db import Database
from bastion.matching import services
from bastion.matching.models import BankEntry
from tests.factories.console import login

PDQ = "f" * 64


def _pdq(n: int) -> str:
    return f"{n:064x}"


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-entry="(\d+)"', html)]


def _count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(BankEntry)) or 0)


def test_a_curator_adds_imports_searches_pages_and_removes_entries(client: TestClient, db: Database,
                                                                    admin: Principal) -> None:
    services.create_bank(db, "TERROR", actor=admin)
    csrf = login(client, db, "cu", Role.CURATOR)
    r = client.post("/console/banks/TERROR/entries", follow_redirects=False,
                    data={"csrf_token": csrf, "signal_type": "pdq", "value": PDQ, "category": "terrorist_content",
                          "note": "from the GIFCT list, May"})
    assert r.status_code == 303 and r.headers["location"] == "/console/banks/TERROR/entries"
    page = client.get("/console/banks/TERROR/entries").text
    assert "Entry 1 added to TERROR." in page and "from the GIFCT list, May" in page

    lines = "signal_type,value,category,note\n" + "".join(f"pdq,{_pdq(i)},terrorist_content,batch {i}\n"
                                                           for i in range(1, 61))
    r = client.post("/console/banks/TERROR/import", data={"csrf_token": csrf},
                    files={"file": ("terror.csv", lines.encode(), "text/csv")})
    assert "Imported 60 line(s) into TERROR: 60 added, 0 already there." in r.text
    assert _count(db) == 61
    first = client.get("/console/banks/TERROR/entries").text
    assert len(_ids(first)) == 50 and 'rel="next"' in first
    second = client.get("/console/banks/TERROR/entries?page=2").text
    assert len(_ids(second)) == 11 and not set(_ids(first)) & set(_ids(second))
    found = client.get("/console/banks/TERROR/entries", params={"q": "GIFCT"}).text
    assert _ids(found) == [1]

    bad = "signal_type,value\npdq," + _pdq(99) + "\npdq,not-a-hash\n"
    r = client.post("/console/banks/TERROR/import", data={"csrf_token": csrf},
                    files={"file": ("bad.csv", bad.encode(), "text/csv")})
    assert "Nothing imported: line 3:" in r.text and _count(db) == 61  # one transaction: nothing of it kept

    r = client.post("/console/banks/TERROR/entries/1/remove", data={"csrf_token": csrf})
    assert "Entry 1 removed from TERROR." in r.text and _count(db) == 60


def test_bank_entry_forms_need_the_csrf_token_and_a_curating_role(client: TestClient, db: Database,
                                                                   admin: Principal) -> None:
    services.create_bank(db, "TERROR", actor=admin)
    login(client, db, "cu", Role.CURATOR)
    r = client.post("/console/banks/TERROR/entries", data={"signal_type": "pdq", "value": PDQ})
    assert r.status_code == 403 and _count(db) == 0
    r = client.post("/console/banks/TERROR/import", data={"csrf_token": "forged"},
                    files={"file": ("a.csv", b"signal_type,value\npdq," + PDQ.encode() + b"\n", "text/csv")})
    assert r.status_code == 403 and _count(db) == 0

    moderator = TestClient(client.app)
    csrf = login(moderator, db, "mo", Role.MODERATOR)
    page = moderator.get("/console/banks/TERROR/entries").text
    assert "Add an entry" not in page and "Import a CSV" not in page  # reads, never changes
    r = moderator.post("/console/banks/TERROR/entries", data={"csrf_token": csrf, "signal_type": "pdq",
                                                                "value": PDQ})
    assert r.status_code == 403 and _count(db) == 0


def test_restricted_bank_entries_are_for_child_safety_roles_only(client: TestClient, db: Database,
                                                                 admin: Principal) -> None:
    services.create_bank(db, "CSAM_KNOWN", actor=admin, restricted=True)
    services.add_entry(db, "CSAM_KNOWN", services.NewEntry.parse("pdq", PDQ, "csam", note="secret note"),
                       actor=admin)
    csrf = login(client, db, "cu", Role.CURATOR)
    r = client.get("/console/banks/CSAM_KNOWN/entries")
    assert r.status_code == 403 and "secret note" not in r.text and PDQ not in r.text
    r = client.post("/console/banks/CSAM_KNOWN/entries/1/remove", data={"csrf_token": csrf})
    assert "Not removed:" in r.text and _count(db) == 1
    r = client.post("/console/banks/CSAM_KNOWN/import", data={"csrf_token": csrf},
                    files={"file": ("a.csv", b"signal_type,value\npdq," + _pdq(7).encode() + b"\n", "text/csv")})
    assert "Nothing imported:" in r.text and _count(db) == 1

    specialist = TestClient(client.app)
    csrf = login(specialist, db, "cs", Role.CHILD_SAFETY)
    assert "secret note" in specialist.get("/console/banks/CSAM_KNOWN/entries").text
    r = specialist.post("/console/banks/CSAM_KNOWN/entries/1/remove", data={"csrf_token": csrf})
    assert "Entry 1 removed from CSAM_KNOWN." in r.text and _count(db) == 0
