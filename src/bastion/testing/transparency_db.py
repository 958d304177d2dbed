"""A fake DSA Transparency Database for tests and benchmarks: the documented API over real HTTP, its validation
rules written out again here (not borrowed from ``moderation/statements.py``, so it checks what Bastion sends), a
store that survives a restart, and ways to die mid-batch.

Run it: ``python -m bastion.testing.transparency_db --port 8765 --token T --store fake.db`` (``--die-after-store N``:
the N-th batch is stored, then the process exits before answering; ``--stall-after-store N``: it answers the N-th
batch only after ``--stall-seconds``). ``GET /fake/receipts`` (same token) counts how often each puid arrived and
how many statements were created per puid, so a test can prove none was doubled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse

MAX_BATCH = 100
_PUID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EEA = frozenset(["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
                  "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"])
_CATEGORIES = frozenset("STATEMENT_CATEGORY_" + c for c in ["ANIMAL_WELFARE", "CONSUMER_INFORMATION",
                                                            "CYBER_VIOLENCE", "CYBER_VIOLENCE_AGAINST_WOMEN",
                                                            "DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
                                                            "ILLEGAL_OR_HARMFUL_SPEECH",
                                                            "INTELLECTUAL_PROPERTY_INFRINGEMENTS",
                                                            "NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
                                                            "NOT_SPECIFIED_NOTICE", "OTHER_VIOLATION_TC",
                                                            "PROTECTION_OF_MINORS", "RISK_FOR_PUBLIC_SECURITY",
                                                            "SCAMS_AND_FRAUD", "SELF_HARM",
                                                            "UNSAFE_AND_PROHIBITED_PRODUCTS", "VIOLENCE"])
_ENUMS: dict[str, frozenset[str]] = {
    "decision_ground": frozenset({"DECISION_GROUND_ILLEGAL_CONTENT", "DECISION_GROUND_INCOMPATIBLE_CONTENT"}),
    "category": _CATEGORIES,
    "source_type": frozenset({"SOURCE_ARTICLE_16", "SOURCE_TRUSTED_FLAGGER", "SOURCE_TYPE_OTHER_NOTIFICATION",
                              "SOURCE_VOLUNTARY"}),
    "automated_detection": frozenset({"Yes", "No"}),
    "automated_decision": frozenset({"AUTOMATED_DECISION_FULLY", "AUTOMATED_DECISION_PARTIALLY",
                                     "AUTOMATED_DECISION_NOT_AUTOMATED"}),
    "decision_monetary": frozenset({"DECISION_MONETARY_SUSPENSION", "DECISION_MONETARY_TERMINATION",
                                    "DECISION_MONETARY_OTHER"}),
    "decision_provision": frozenset({"DECISION_PROVISION_PARTIAL_SUSPENSION", "DECISION_PROVISION_TOTAL_SUSPENSION",
                                     "DECISION_PROVISION_PARTIAL_TERMINATION", "DECISION_PROVISION_TOTAL_TERMINATION"}),
    "decision_account": frozenset({"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"}),
    "account_type": frozenset({"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"}),
    "incompatible_content_illegal": frozenset({"Yes", "No"}),
}
_LISTS: dict[str, frozenset[str]] = {
    "decision_visibility": frozenset("DECISION_VISIBILITY_" + v for v in ["CONTENT_REMOVED", "CONTENT_DISABLED",
                                                                          "CONTENT_DEMOTED", "CONTENT_AGE_RESTRICTED",
                                                                          "CONTENT_INTERACTION_RESTRICTED",
                                                                          "CONTENT_LABELLED", "OTHER"]),
    "content_type": frozenset("CONTENT_TYPE_" + v for v in ["APP", "AUDIO", "IMAGE", "PRODUCT", "SYNTHETIC_MEDIA",
                                                            "TEXT", "VIDEO", "OTHER"]),
    "category_addition": _CATEGORIES,
}
_TEXTS = {"decision_facts": 5000, "illegal_content_legal_ground": 500, "illegal_content_explanation": 2000,
          "incompatible_content_ground": 500, "incompatible_content_explanation": 2000,
          "decision_visibility_other": 500, "decision_monetary_other": 500, "content_type_other": 500,
          "category_specification_other": 500, "decision_ground_reference_url": 500, "source_identity": 500}
_REQUIRED = ("decision_ground", "category", "content_type", "content_date", "application_date", "decision_facts",
             "source_type", "automated_detection", "automated_decision", "puid")
_DATES = {"content_date": "2000-01-01", "application_date": "2020-01-01", "end_date_visibility_restriction": "",
          "end_date_monetary_restriction": "", "end_date_service_restriction": "", "end_date_account_restriction": ""}
_OTHERS = (("decision_visibility", "DECISION_VISIBILITY_OTHER", "decision_visibility_other"),
           ("decision_monetary", "DECISION_MONETARY_OTHER", "decision_monetary_other"),
           ("content_type", "CONTENT_TYPE_OTHER", "content_type_other"),
           ("category_specification", "KEYWORD_OTHER", "category_specification_other"))
KNOWN = frozenset(_ENUMS) | frozenset(_LISTS) | frozenset(_TEXTS) | frozenset(_DATES) | frozenset(_REQUIRED) | {
    "category_specification", "territorial_scope", "content_language"}


def validate(statement: Any) -> dict[str, list[str]]:
    """The database's rules (dsa-statement-of-reasons.md): field -> messages; empty when the statement is valid."""
    if not isinstance(statement, dict):
        return {"statement": ["must be an object"]}
    errors: dict[str, list[str]] = {}

    def fail(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    for name in sorted(set(statement) - KNOWN):
        fail(name, "is not a field of a statement of reasons")
    for name in _REQUIRED:
        if statement.get(name) in (None, "", []):
            fail(name, "is required")
    for name, allowed in _ENUMS.items():
        if name in statement and statement[name] not in allowed:
            fail(name, "is not one of the allowed values")
    for name, allowed in _LISTS.items():
        value = statement.get(name)
        if value is not None and (not isinstance(value, list) or not value or not set(value) <= allowed):
            fail(name, "must be a non-empty array of the allowed values")
    spec = statement.get("category_specification")
    if spec is not None and (not isinstance(spec, list) or not all(isinstance(k, str) and k.startswith("KEYWORD_")
                                                                   for k in spec)):
        fail("category_specification", "must be an array of KEYWORD_ values")
    for name, longest in _TEXTS.items():
        value = statement.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            fail(name, f"must be text of at most {longest} characters")
    for name, earliest in _DATES.items():
        value = statement.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not _DATE.match(value):
            fail(name, "must be a date YYYY-MM-DD")
        elif value < earliest:
            fail(name, f"must be on or after {earliest}")
    puid = statement.get("puid")
    if puid is not None and (not isinstance(puid, str) or not _PUID.match(puid)):
        fail("puid", "must be at most 500 characters of letters, digits, - and _")
    if not any(statement.get(n) for n in ("decision_visibility", "decision_monetary", "decision_provision",
                                           "decision_account")):
        fail("decision_visibility", "one of decision_visibility, decision_monetary, decision_provision, "
                                    "decision_account is required")
    ground = statement.get("decision_ground")
    needs = {"DECISION_GROUND_ILLEGAL_CONTENT": ("illegal_content_legal_ground", "illegal_content_explanation"),
             "DECISION_GROUND_INCOMPATIBLE_CONTENT": ("incompatible_content_ground",
                                                      "incompatible_content_explanation")}
    for name in needs.get(str(ground), ()):
        if not statement.get(name):
            fail(name, "is required for this decision ground")
    for listed, other, text in _OTHERS:
        value = statement.get(listed)
        chosen = value if isinstance(value, list) else [value]
        if other in chosen and not statement.get(text):
            fail(text, f"is required when {other} is chosen")
    scope = statement.get("territorial_scope")
    if scope is not None and (not isinstance(scope, list) or not set(scope) <= _EEA):
        fail("territorial_scope", "must be EU/EEA ISO 3166-1 alpha-2 codes")
    language = statement.get("content_language")
    if language is not None and (not isinstance(language, str) or not re.fullmatch(r"[A-Z]{2}", language)):
        fail("content_language", "must be an upper-case ISO 639-1 code")
    return errors


@dataclass
class FakeOptions:
    token: str
    store: Path
    die_after_store: int = 0
    stall_after_store: int = 0
    stall_seconds: float = 0.0


class Store:
    """Statements by puid in a SQLite file, so a restarted fake still knows every puid it accepted."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS statements (puid TEXT PRIMARY KEY, uuid TEXT, body TEXT, "
                         "created_at TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS receipts (puid TEXT PRIMARY KEY, received INTEGER, "
                         "created INTEGER)")
        self.lock = threading.Lock()
        self.batches = 0

    def existing(self, puids: list[str]) -> dict[str, str]:
        marks = ",".join("?" * len(puids))
        return dict(self._db.execute(f"SELECT puid, uuid FROM statements WHERE puid IN ({marks})", puids).fetchall())

    def receive(self, puids: list[str]) -> None:
        self._db.executemany("INSERT INTO receipts VALUES (?, 1, 0) ON CONFLICT(puid) DO UPDATE SET "
                             "received = received + 1", [(p,) for p in puids])

    def create(self, statements: list[dict[str, Any]]) -> list[dict[str, str]]:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        made = [{"puid": s["puid"], "uuid": str(uuid.uuid4()), "created_at": now} for s in statements]
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO statements VALUES (?, ?, ?, ?)",
                             [(m["puid"], m["uuid"], json.dumps(s), now)
                              for m, s in zip(made, statements, strict=True)])
        self._db.executemany("UPDATE receipts SET created = created + 1 WHERE puid = ?", [(m["puid"],) for m in made])
        self._db.execute("COMMIT")
        return made

    def by_uuid(self, value: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body, uuid, created_at FROM statements WHERE uuid = ?", (value,)).fetchone()
        return None if row is None else {**json.loads(row[0]), "uuid": row[1], "created_at": row[2]}

    def receipts(self) -> dict[str, Any]:
        rows = self._db.execute("SELECT puid, received, created FROM receipts").fetchall()
        return {"received": {p: r for p, r, _ in rows}, "created": {p: c for p, _, c in rows}}


def create_fake(options: FakeOptions) -> FastAPI:
    """The fake's app: ``POST /api/v1/statement(s)``, ``GET /api/v1/statement/{uuid}``, ``.../existing-puid/{puid}``."""
    app = FastAPI(title="Fake DSA Transparency Database")
    store = Store(options.store)

    def authorised(authorization: Annotated[str, Header()] = "") -> None:
        if authorization != f"Bearer {options.token}":
            raise HTTPException(401, "Unauthenticated.")

    def permalink(request: Request, value: str) -> str:
        return f"{str(request.base_url).rstrip('/')}/statement/{value}"

    def after_store(batch: int) -> None:
        if options.die_after_store and batch >= options.die_after_store:
            os._exit(3)  # stored, and killed before a byte of the answer leaves
        if options.stall_after_store and batch == options.stall_after_store:
            time.sleep(options.stall_seconds)

    @app.get("/fake/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/fake/receipts", dependencies=[Depends(authorised)])
    def receipts() -> dict[str, Any]:
        return store.receipts()

    @app.post("/api/v1/statements", dependencies=[Depends(authorised)], status_code=201)
    async def create_many(request: Request) -> Any:
        body = await request.json()
        statements = body.get("statements") if isinstance(body, dict) else None
        if not isinstance(statements, list) or not 0 < len(statements) <= MAX_BATCH:
            return JSONResponse({"message": "invalid batch", "errors": {
                "statements": [f"must be an array of 1 to {MAX_BATCH} statements"]}}, 422)
        return await _run(lambda: _many(request, statements))

    def _many(request: Request, statements: list[Any]) -> Any:
        puids = [s.get("puid") if isinstance(s, dict) else None for s in statements]
        with store.lock:
            store.receive([p for p in puids if isinstance(p, str)])
            known = store.existing([p for p in puids if isinstance(p, str)])
            errors: dict[str, list[str]] = {}
            existing: dict[str, dict[str, str]] = {}
            seen: set[str] = set()
            for i, statement in enumerate(statements):
                for name, messages in validate(statement).items():
                    errors[f"statements.{i}.{name}"] = messages
                puid = puids[i]
                if isinstance(puid, str) and puid in known:
                    existing[f"statements.{i}"] = {"puid": puid, "uuid": known[puid]}
                    errors.setdefault(f"statements.{i}.puid", []).append("The identifier given is not unique "
                                                                           "within this platform.")
                elif isinstance(puid, str) and puid in seen:
                    errors.setdefault(f"statements.{i}.puid", []).append("is repeated in this batch")
                if isinstance(puid, str):
                    seen.add(puid)
            if errors:
                return JSONResponse({"message": "The statements were not created.", "errors": errors,
                                     "existing": existing}, 422)
            made = store.create(statements)
            store.batches += 1
            batch = store.batches
        after_store(batch)  # outside the lock: a stalled answer holds up no other request
        return {"statements": [{**m, "permalink": permalink(request, m["uuid"])} for m in made]}

    @app.post("/api/v1/statement", dependencies=[Depends(authorised)], status_code=201)
    async def create_one(request: Request) -> Any:
        statement = await request.json()
        return await _run(lambda: _one(request, statement))

    def _one(request: Request, statement: Any) -> Any:
        puid = statement.get("puid") if isinstance(statement, dict) else None
        with store.lock:
            if isinstance(puid, str):
                store.receive([puid])
                known = store.existing([puid])
                if puid in known:
                    return JSONResponse({"message": "The identifier given is not unique within this platform.",
                                         "errors": {"puid": ["The identifier given is not unique within this "
                                                             "platform."]},
                                         "existing": {"puid": puid, "uuid": known[puid]}}, 422)
            errors = validate(statement)
            if errors:
                return JSONResponse({"message": "The statement was not created.", "errors": errors}, 422)
            [made] = store.create([statement])
            store.batches += 1
            batch = store.batches
        after_store(batch)
        return {**made, "permalink": permalink(request, made["uuid"])}

    @app.get("/api/v1/statement/existing-puid/{puid}", dependencies=[Depends(authorised)])
    def existing_puid(puid: str, request: Request) -> Any:
        known = store.existing([puid])
        if puid not in known:
            return JSONResponse({"message": "statement not found"}, 404)
        return RedirectResponse(f"{str(request.base_url).rstrip('/')}/api/v1/statement/{known[puid]}", 302)

    @app.get("/api/v1/statement/{value}", dependencies=[Depends(authorised)])
    def get_statement(value: str) -> Any:
        found = store.by_uuid(value)
        if found is None:
            return JSONResponse({"message": "statement not found"}, 404)
        return found

    return app


async def _run(work: Any) -> Any:
    from starlette.concurrency import run_in_threadpool
    return await run_in_threadpool(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--die-after-store", type=int, default=0)
    parser.add_argument("--stall-after-store", type=int, default=0)
    parser.add_argument("--stall-seconds", type=float, default=0.0)
    args = parser.parse_args()
    import uvicorn
    uvicorn.run(create_fake(FakeOptions(args.token, args.store, args.die_after_store, args.stall_after_store,
                                        args.stall_seconds)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
