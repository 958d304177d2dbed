"""What leaves for the Transparency Database (no personal data) and how its answers are read, per statement."""

from __future__ import annotations

import datetime as dt

import pytest

from bastion.moderation import statements
from bastion.moderation.policy import Action, Category
from bastion.transparency.sor_client import PersonalData, read_batch_answer, scrub

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _body(facts: str, puid: str = "sor-1") -> dict[str, object]:
    return statements.build(puid=puid, category=Category.TERRORIST_CONTENT, actions=[Action.REMOVE],
                            content_type="video", content_date=NOW.date(), decided_at=NOW, facts=facts,
                            source_type=statements.Source.NOTICE, automated_detection=False, automated_decision=False)


def test_the_account_id_and_e_mail_addresses_are_scrubbed_from_every_text() -> None:
    body = _body("Uploaded by ACCT-42 (acct-42@mail.example); acct-42 was warned. Not acct-420 nor xacct-42x.")
    sent = scrub(body, account_id="acct-42")
    for name in ("decision_facts", "illegal_content_explanation"):
        text = str(sent[name])
        assert "acct-42" not in text.lower().replace("acct-420", "").replace("xacct-42x", ""), text
        assert "@" not in text and text.count("[redacted]") == 3
        assert "acct-420" in text and "xacct-42x" in text  # other tokens are not the id
    assert statements.problems(sent) == []


def test_fields_the_database_does_not_know_never_leave() -> None:
    sent = scrub({**_body("facts"), "account_id": "acct-42", "content_id": "c-1"}, account_id="acct-42")
    assert "account_id" not in sent and "content_id" not in sent


def test_a_puid_holding_the_account_id_is_refused() -> None:
    with pytest.raises(PersonalData):
        scrub(_body("facts", puid="sor-acct-42-1"), account_id="acct-42")


PUIDS = ["a", "b", "c"]


@pytest.mark.parametrize(("status", "body", "expected"), [
    (201, {"statements": [{"puid": p, "uuid": f"u-{p}"} for p in PUIDS]},
     {"accepted": {"a": "u-a", "b": "u-b", "c": "u-c"}}),
    (422, {"errors": {"statements.1.category": ["is not one of the allowed values"]}},
     {"rejected": {"b": {"category": ["is not one of the allowed values"]}}, "unsent": ["a", "c"]}),
    (422, {"errors": {"statements.0.puid": ["not unique"]}, "existing": {"statements.0": {"puid": "a", "uuid": "u"}}},
     {"existing": {"a": "u"}, "unsent": ["b", "c"]}),
    (422, {"errors": {"statements": ["must be an array of 1 to 100 statements"]}}, {"failure": True}),
    (401, {"message": "Unauthenticated."}, {"failure": True}),
    (400, None, {"failure": True}),
])
def test_an_answer_is_read_per_statement(status: int, body: object, expected: dict[str, object]) -> None:
    answer = read_batch_answer(PUIDS, status, body)
    assert answer.accepted == expected.get("accepted", {})
    assert answer.existing == expected.get("existing", {})
    assert answer.rejected == expected.get("rejected", {})
    assert answer.unsent == expected.get("unsent", [])
    assert (answer.failure is not None) == bool(expected.get("failure"))
