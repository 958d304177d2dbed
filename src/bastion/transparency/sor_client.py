"""The wire to the DSA Transparency Database: what may leave (``scrub``), one batch request, and its answer read
per statement (``BatchAnswer``). The wire is written out in docs/transparency-database.md.

A batch is all or nothing: when any statement in it is refused, none is created, and the answer names the refused
ones (``errors`` keyed ``statements.<index>.<field>``) and those the database already holds (``existing``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bastion.core.outbox.delivery import RETRYABLE_4XX, short_error

#: The fields the database knows (dsa-statement-of-reasons.md); anything else is dropped before sending.
FIELDS = frozenset({
    "decision_visibility", "decision_visibility_other", "end_date_visibility_restriction", "decision_monetary",
    "decision_monetary_other", "end_date_monetary_restriction", "decision_provision", "end_date_service_restriction",
    "decision_account", "end_date_account_restriction", "account_type", "decision_ground",
    "decision_ground_reference_url", "illegal_content_legal_ground", "illegal_content_explanation",
    "incompatible_content_ground", "incompatible_content_explanation", "incompatible_content_illegal", "category",
    "category_addition", "category_specification", "category_specification_other", "content_type",
    "content_type_other", "content_language", "content_date", "territorial_scope", "application_date",
    "decision_facts", "source_type", "source_identity", "automated_detection", "automated_decision", "puid",
})
MAX_BATCH = 100
REDACTED = "[redacted]"
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


class PersonalData(ValueError):
    """A statement whose key itself would carry personal data: it cannot be sent, and cannot be mended by scrubbing."""


def _without(text: str, token: str) -> str:
    """``text`` with ``token`` replaced wherever it stands as a whole token, in any case (``u1`` in "u1 posted" but
    not in "menu12"). A plain scan, not a regex: each account's id would compile one, and most texts hold none."""
    low, target = text.lower(), token.lower()
    if target not in low:
        return text
    if len(low) != len(text):  # a character whose lower case is longer: the regex's slower, exact way
        return re.sub(rf"(?<![^\W_]){re.escape(token)}(?![^\W_])", REDACTED, text, flags=re.IGNORECASE)
    parts: list[str] = []
    at = 0
    while (found := low.find(target, at)) >= 0:
        end = found + len(target)
        alone = (found == 0 or not low[found - 1].isalnum()) and (end == len(low) or not low[end].isalnum())
        parts.append(text[at:found] + (REDACTED if alone else text[found:end]))
        at = end
    return "".join(parts) + text[at:]


def _clean(value: object, account_id: str) -> object:
    if isinstance(value, str):
        value = _EMAIL.sub(REDACTED, value) if "@" in value else value
        return _without(value, account_id) if account_id else value
    if isinstance(value, list):
        return [_clean(v, account_id) for v in value]
    return value


def scrub(body: dict[str, object], *, account_id: str) -> dict[str, object]:
    """The statement as it may leave: only the database's fields, with the account's identifier and any e-mail
    address replaced by ``[redacted]`` in every text (a moderator's facts may quote either).

    Raises ``PersonalData`` when the ``puid`` holds the account id or an address: the key cannot change, so the
    statement is not sent.
    """
    account_id = account_id.strip()
    puid = str(body.get("puid", ""))
    if _EMAIL.search(puid) or (account_id and _without(puid, account_id) != puid):
        raise PersonalData("puid holds personal data (the account id or an e-mail address)")
    return {name: (value if name == "puid" else _clean(value, account_id))
            for name, value in body.items() if name in FIELDS}


@dataclass
class BatchAnswer:
    """What the database said of each statement of one request. ``failure`` set: nothing is known of any of them
    (network, 5xx, 429, a refused token), and the same request may succeed later."""

    accepted: dict[str, str] = field(default_factory=dict)  # puid -> uuid
    existing: dict[str, str] = field(default_factory=dict)  # puid -> uuid ("" when not given)
    rejected: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # puid -> field -> messages
    #: Valid, but not created because the batch was refused for others: to send again at once.
    unsent: list[str] = field(default_factory=list)
    failure: str | None = None


class Unanswered(Exception):
    """The database could not say whether it holds a puid (no answer, or an unexpected one)."""


class StatementsApi(Protocol):
    """Sends one batch (at most ``MAX_BATCH`` statements, already scrubbed) and reads the answer per statement."""

    def submit(self, statements: Sequence[dict[str, object]]) -> BatchAnswer: ...

    def known(self, puid: str) -> str | None:
        """The database's ``uuid`` for ``puid`` when it holds it ("" if it gives none), ``None`` when it does not;
        raises ``Unanswered`` when it cannot tell."""
        ...


_INDEXED = re.compile(r"^statements?[._](\d+)(?:\.(.+))?$")


def read_batch_answer(puids: Sequence[str], status: int, body: Any) -> BatchAnswer:
    """Turn an HTTP answer to ``POST /api/v1/statements`` into one outcome per statement (pure; tested as a table)."""
    answer = BatchAnswer()
    if status in (200, 201):
        listed = body.get("statements", []) if isinstance(body, dict) else []
        uuids = {str(s.get("puid")): str(s.get("uuid", "")) for s in listed if isinstance(s, dict)}
        answer.accepted = {p: uuids.get(p, "") for p in puids}
        return answer
    if status != 422 or not isinstance(body, dict):
        detail = "refused the token" if status in (401, 403) else "answered"
        answer.failure = short_error(f"the Transparency Database {detail} HTTP {status}")
        return answer
    existing: dict[int, str] = {}
    for key, value in (body.get("existing") or {}).items():
        match = _INDEXED.match(str(key))
        if match:
            existing[int(match.group(1))] = str(value.get("uuid", "")) if isinstance(value, dict) else ""
    errors: dict[int, dict[str, list[str]]] = {}
    whole: list[str] = []
    for key, messages in (body.get("errors") or {}).items():
        texts = [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
        match = _INDEXED.match(str(key))
        if match is None:
            whole += [f"{key}: {m}" for m in texts]
            continue
        errors.setdefault(int(match.group(1)), {})[match.group(2) or "statement"] = texts
    if whole and not errors and not existing:  # about the request, not any statement (too many, say)
        answer.failure = short_error("the Transparency Database refused the batch: " + "; ".join(whole))
        return answer
    for index, puid in enumerate(puids):
        if index in existing:
            answer.existing[puid] = existing[index]
        elif index in errors:
            answer.rejected[puid] = errors[index]
        else:
            answer.unsent.append(puid)
    return answer


class TransparencyClient:
    """``POST {base}/api/v1/statements`` with the platform's bearer token; one pooled connection per client."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 http: httpx.Client | None = None) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.url = self.base + "/statements"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                         "Content-Type": "application/json"}
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)

    def submit(self, statements: Sequence[dict[str, object]]) -> BatchAnswer:
        if not 0 < len(statements) <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} statements")
        puids = [str(s["puid"]) for s in statements]
        try:
            response = self._http.post(self.url, json={"statements": list(statements)}, headers=self._headers)
        except httpx.HTTPError as exc:  # the type only: the text may carry the URL
            return BatchAnswer(failure=f"no answer from the Transparency Database ({type(exc).__name__})")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in RETRYABLE_4XX or response.status_code >= 500:
            return BatchAnswer(failure=f"the Transparency Database answered HTTP {response.status_code}")
        return read_batch_answer(puids, response.status_code, body)

    def known(self, puid: str) -> str | None:
        """``GET /api/v1/statement/existing-puid/{puid}``: 302 to the statement when held, 404 when not."""
        try:
            response = self._http.get(f"{self.base}/statement/existing-puid/{puid}", headers=self._headers)
        except httpx.HTTPError as exc:
            raise Unanswered(type(exc).__name__) from None
        if response.status_code == 404:
            return None
        if response.status_code in (301, 302, 303, 307, 308):
            location = str(response.headers.get("location", ""))
            return location.rstrip("/").rsplit("/", 1)[-1]
        raise Unanswered(f"HTTP {response.status_code}")

    def close(self) -> None:
        self._http.close()
