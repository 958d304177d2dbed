"""``/openapi.json`` documents what the platform API answers and what it reads: a client can be generated from it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

#: (method, path) -> answer fields the schema must name.
ANSWERS: dict[tuple[str, str], set[str]] = {
    ("post", "/v1/content"): {"content_id", "verdict", "status", "reasons", "case_id", "statement_puid", "signals",
                              "replay"},
    ("get", "/v1/content/{content_id}"): {"content_id", "account_id", "status", "verdict", "restrictions",
                                          "category", "views", "events"},
    ("post", "/v1/notices"): {"content_id", "case_id"},
    ("post", "/v1/content/{content_id}/metrics"): {"content_id", "thresholds_crossed"},
    ("post", "/v1/appeals"): {"appeal_id", "case_id", "state"},
    ("get", "/v1/statements/{puid}"): {"puid", "decision_ground", "category", "content_type", "decision_facts",
                                       "source_type", "automated_detection", "automated_decision"},
    ("get", "/v1/queues"): {"queues"},
    ("post", "/v1/queues/{queue}/claim"): {"id", "content_id", "queue", "due_at", "seconds_left", "claimed_by"},
    ("post", "/v1/cases/{case_id}/decision"): {"case_id", "content_id", "status", "statement_puid", "appeal"},
    ("post", "/v1/cases/{case_id}/escalate"): {"id", "escalated", "escalation_note"},
    ("post", "/v1/content/{content_id}/curate"): {"content_id", "bank", "added", "skipped"},
    ("get", "/v1/policy"): {"policy", "rules", "shadow"},
    ("post", "/v1/hash"): {"kind", "signals"},
    ("post", "/v1/match"): {"signals", "matches"},
    ("get", "/v1/banks"): {"banks"},
    ("post", "/v1/banks"): {"name", "restricted", "dihedral", "thresholds", "entries", "created_at"},
    ("post", "/v1/banks/{name}/entries"): {"id", "bank", "signal_type", "value", "category", "added_at"},
}


@pytest.fixture
def openapi(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def test_the_schema_names_each_answer_s_fields(openapi: dict[str, Any]) -> None:
    missing = {}
    for (method, path), fields in ANSWERS.items():
        responses = openapi["paths"][path][method]["responses"]
        ok = next(r for code, r in responses.items() if code.startswith("2"))
        schema = _resolve(openapi, ok["content"]["application/json"]["schema"])
        if not fields <= set(schema.get("properties", {})):
            missing[f"{method} {path}"] = sorted(fields - set(schema.get("properties", {})))
    assert not missing


@pytest.mark.parametrize(("path", "kinds", "fields"), [
    ("/v1/content", {"multipart/form-data"}, {"content_id", "account_id", "account_age", "content_type", "media"}),
    ("/v1/match", {"multipart/form-data", "application/json"}, {"file", "signal_type", "value"}),
])
def test_the_bodies_read_by_hand_are_documented(openapi: dict[str, Any], path: str, kinds: set[str],
                                                fields: set[str]) -> None:
    body = openapi["paths"][path]["post"]["requestBody"]["content"]
    assert set(body) == kinds
    named = {f for kind in body.values() for f in _resolve(openapi, kind["schema"])["properties"]}
    assert fields <= named
