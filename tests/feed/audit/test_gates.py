"""The offline audit's gate: the catalogue registered in a Bastion on loopback through the public API (harmful items
removed, borderline ones kept out of recommendations by moderators' decisions), then the gate called over HTTP."""

from __future__ import annotations

import json
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from bastion.feed.audit import runner
from bastion.feed.audit.gates import GateError, HttpGate, Viewer, await_decisions
from bastion.feed.audit.personas import AMNESTY, NEWSGUARD
from bastion.feed.audit.recommender import ReferenceRecommender
from tests.factories.live import loopback
from tests.feed.audit.conftest import CATALOGUE, SEED, Loopback


def test_the_catalogue_is_registered_and_decided_and_the_gate_withholds_it(loopback_bastion: Loopback) -> None:
    headers = {"Authorization": f"Bearer {loopback_bastion.tokens.platform}"}
    for item in CATALOGUE.items:
        record = httpx.get(f"{loopback_bastion.base}/v1/content/{item.content_id}", headers=headers).json()
        if item.label.value == "harmful":
            assert record["status"] == "removed", item
        elif item.label.value == "borderline":
            assert record["status"] != "removed" and "not_recommended" in record["restrictions"], item
        else:
            assert record["status"] == "published" and record["restrictions"] == [], item
    # the gate withholds what moderators decided, and what it does not know
    gate = HttpGate(loopback_bastion.gate, loopback_bastion.tokens.platform)
    by_label = {label: [i.content_id for i in CATALOGUE.items if i.label.value == label][:3]
                for label in ("benign", "borderline", "harmful")}
    withheld = gate.filter(Viewer("audit-x", 30), [*by_label["benign"], *by_label["borderline"],
                                                   *by_label["harmful"], "never-registered"])
    assert set(withheld) == {*by_label["borderline"], *by_label["harmful"], "never-registered"}
    assert all("removed" in withheld[i] for i in by_label["harmful"])
    assert all("not_recommended" in withheld[i] for i in by_label["borderline"])
    assert withheld["never-registered"] == ("unknown",)


def test_with_the_gate_no_harmful_or_borderline_item_is_served(loopback_bastion: Loopback) -> None:
    settings = runner.AuditSettings("test", (NEWSGUARD[0], AMNESTY[0]), 3, SEED, len(CATALOGUE.items),
                                    bucket_minutes=1, gate=loopback_bastion.gate)
    results = runner.run(settings, ReferenceRecommender(CATALOGUE, SEED),
                         HttpGate(loopback_bastion.gate, loopback_bastion.tokens.platform))
    teen = next(p for p in results["personas"] if p["id"] == "teen-13-lingers")["conditions"]
    assert teen["without_gate"]["harmful"] > 0 and teen["without_gate"]["first_harmful_minute"] < 3
    for persona in results["personas"]:
        gated = persona["conditions"]["with_gate"]
        assert gated["harmful"] == gated["borderline"] == 0 and gated["first_harmful_minute"] is None
        assert gated["items"] > 0
    assert teen["with_gate"]["withheld"]["items"] > 0
    assert set(teen["with_gate"]["withheld"]["reasons"]) <= {"removed", "not_recommended", "borderline",
                                                             "held_for_review", "age_restricted", "crisis"}


class _Fixed(BaseHTTPRequestHandler):
    answer: bytes = b""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


def test_a_gate_out_of_contract_stops_the_audit_and_an_unanswered_item_is_withheld() -> None:
    class Broken(_Fixed):
        answer = json.dumps({"eligible": ["a"]}).encode()  # no "excluded"

    class Silent(_Fixed):
        answer = json.dumps({"eligible": ["a"], "excluded": []}).encode()  # says nothing of "b"

    with loopback(ThreadingHTTPServer(("127.0.0.1", 0), Broken)) as url, pytest.raises(GateError, match="KeyError"):
        HttpGate(url, "t").filter(Viewer("audit-x", 30), ["a", "b"])
    with loopback(ThreadingHTTPServer(("127.0.0.1", 0), Silent)) as url:
        assert HttpGate(url, "t").filter(Viewer("audit-x", 30), ["a", "b"]) == {"b": ("unknown",)}


class _Lagging:
    """A gate that hears of the catalogue's decisions only after ``lag`` questions (a view a refresh behind)."""

    def __init__(self, lag: int) -> None:
        self.asked, self.lag = 0, lag

    def filter(self, viewer: Viewer, content_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        self.asked += 1
        decided = {i.content_id for i in CATALOGUE.items if i.label.value in ("harmful", "borderline")}
        return {c: ("removed",) for c in content_ids if c in decided} if self.asked > self.lag else {}


def test_the_audit_waits_until_the_gate_has_heard_of_every_decision() -> None:
    gate = _Lagging(lag=3)
    await_decisions(gate, CATALOGUE)
    assert gate.asked == 4  # asked until every decided item was withheld, then no more
    with pytest.raises(GateError, match="still serves"):
        await_decisions(_Lagging(lag=10**9), CATALOGUE, timeout=0.2)
