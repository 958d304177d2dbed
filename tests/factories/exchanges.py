"""Fake hash exchanges on loopback, each speaking its API as python-threatexchange's client calls it.

``FakeThreatExchange``: the Graph API's ``/<privacy group>/threat_updates`` (access token checked, updates since
``start_time`` in update order, paged with ``paging.next`` as full URLs carrying the token, as Meta's do), the
reactions POST on a descriptor, and the ``/threat_descriptors`` POST that shares a new hash (its required fields
checked, the privacy group too; answers the new descriptor's id). ``FakeNcmec``: NCMEC hash sharing's
``/v2/entries`` (HTTP Basic auth, a time range ``from``/``to``, XML pages with ``paging/next`` relative to the
environment's URL, deleted entries as ``deletedImage``) and the feedback PUT. Tests script failures: an HTTP status
for the next n calls.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.sax.saxutils import escape

import pytest

from tests.factories.live import loopback

TE_APP_ID = 1234567890
TE_TOKEN = f"{TE_APP_ID}|abcdefghijklmnopqrstuvwx"
TE_GROUP = 303
NCMEC_USER, NCMEC_PASSWORD = "esp-user", "hash-pass"
NCMEC_DATE = "%Y-%m-%dT%H:%M:%SZ"


class _Handler(BaseHTTPRequestHandler):
    """What every fake's handler shares: it logs nothing, and answers a JSON or XML body."""

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _xml(self, status: int, body: str) -> None:
        self._send(status, body.encode(), "application/xml")


class _Fake(Protocol):
    base: str


FakeT = TypeVar("FakeT", bound=_Fake)


def _serve(fake: FakeT, server_class: type[ThreadingHTTPServer], handler: type[_Handler]) -> Iterator[FakeT]:
    """``fake`` served on loopback by ``handler`` for the length of a test; its ``base`` is the server's URL."""
    server = server_class(("127.0.0.1", 0), handler)
    server.fake = fake  # type: ignore[attr-defined]
    with loopback(server) as base:
        fake.base = base
        yield fake


@dataclass
class Script:
    """Failures to answer: each call takes the first status off ``fail`` (0: answer normally), or the one
    ``fail_on`` gives for a text in its path and query."""

    fail: list[int] = field(default_factory=list)
    #: A status for the first call whose path and query hold the text (once each).
    fail_on: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_failure(self, path: str) -> int:
        with self.lock:
            self.calls.append(path)
            for text, status in list(self.fail_on.items()):
                if text in path:
                    del self.fail_on[text]
                    return status
            return self.fail.pop(0) if self.fail else 0


# --- ThreatExchange -------------------------------------------------------------------------------------------------


@dataclass
class FakeThreatExchange:
    base: str = ""
    page_size: int = 2
    updates: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[tuple[str, str]] = field(default_factory=list)
    #: Descriptors shared with the group (the POSTed form, one value per field), in order.
    uploads: list[dict[str, str]] = field(default_factory=list)
    script: Script = field(default_factory=Script)
    #: Calls after the first ``hold_after`` wait until ``gate`` is set (a client to kill in mid-fetch).
    hold_after: int | None = None
    gate: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"{self.base}/v26.0"

    def put(self, indicator_id: int, indicator: str, *, time: int, type_: str = "HASH_PDQ",
            tags: tuple[str, ...] = ("terrorism",), status: str = "MALICIOUS", delete: bool = False,
            descriptor_id: int | None = None, owner: int = 555) -> None:
        """Add or replace the update of one indicator (an indicator appears once, at its last update)."""
        self.updates = [u for u in self.updates if u["id"] != str(indicator_id)]
        update: dict[str, Any] = {"id": str(indicator_id), "indicator": indicator, "type": type_,
                                  "last_updated": time, "should_delete": delete}
        if not delete:
            descriptor = {"id": str(descriptor_id or indicator_id * 10), "owner": {"id": str(owner)},
                          "status": status, "tags": list(tags), "reactions": []}
            update["descriptors"] = {"data": [descriptor]}
        self.updates.append(update)


class _TeServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeThreatExchange


class _TeHandler(_Handler):
    server: _TeServer

    def _checked(self) -> tuple[FakeThreatExchange, list[str], dict[str, list[str]]] | None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        failure = fake.script.next_failure(parts.path)
        if failure:
            self._json(failure, {"error": {"message": "An unexpected error has occurred.", "type": "OAuthException",
                                           "code": 2, "is_transient": True}})
            return None
        if query.get("access_token") != [TE_TOKEN]:
            self._json(400, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                       "code": 190}})
            return None
        segments = [s for s in parts.path.split("/") if s]
        if not segments or segments[0] != "v26.0":
            self._json(400, {"error": {"message": "Unknown path components", "type": "OAuthException",
                                       "code": 2500}})
            return None
        return fake, segments[1:], query

    def do_GET(self) -> None:
        checked = self._checked()
        if checked is None:
            return
        fake, segments, query = checked
        if fake.hold_after is not None and len(fake.script.calls) > fake.hold_after:
            fake.gate.wait(30)
        if segments != [str(TE_GROUP), "threat_updates"]:
            self._json(400, {"error": {"message": "Unsupported get request.", "type": "GraphMethodException",
                                       "code": 100}})
            return
        start = int(query.get("start_time", ["0"])[0] or 0)
        after = int(query.get("after", ["0"])[0])
        ordered = sorted((u for u in fake.updates if u["last_updated"] >= start),
                         key=lambda u: (u["last_updated"], int(u["id"])))
        page = ordered[after:after + fake.page_size]
        body: dict[str, Any] = {"data": page}
        if after + fake.page_size < len(ordered):
            more = {"access_token": TE_TOKEN, "start_time": start, "limit": fake.page_size,
                    "after": after + fake.page_size}
            body["paging"] = {"cursors": {"after": str(after + fake.page_size)},
                              "next": f"{fake.url}/{TE_GROUP}/threat_updates/?{urlencode(more)}"}
        self._json(200, body)

    def do_POST(self) -> None:
        checked = self._checked()
        if checked is None:
            return
        fake, segments, query = checked
        if segments == ["threat_descriptors"]:
            self._upload(fake)
            return
        known = {d["id"] for u in fake.updates for d in u.get("descriptors", {}).get("data", [])}
        if len(segments) != 1 or segments[0] not in known:
            self._json(400, {"error": {"message": "Unsupported post request.", "type": "GraphMethodException",
                                       "code": 100}})
            return
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        reaction = (query.get("reactions") or form.get("reactions") or [""])[0]
        fake.reactions.append((segments[0], reaction))
        self._json(200, {"success": True})


    def _upload(self, fake: FakeThreatExchange) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        missing = [f for f in ("indicator", "type", "description", "share_level", "status", "privacy_type")
                   if not form.get(f)]
        if missing or form["type"] not in ("HASH_PDQ", "HASH_MD5") or form["privacy_type"] != "HAS_PRIVACY_GROUP" \
                or form.get("privacy_members") != str(TE_GROUP):
            self._json(400, {"error": {"message": f"Invalid parameter {missing or form.get('type')}",
                                       "type": "OAuthException", "code": 100}})
            return
        fake.uploads.append(form)
        self._json(200, {"success": True, "id": str(9_000_000 + len(fake.uploads))})


@pytest.fixture
def threatexchange() -> Iterator[FakeThreatExchange]:
    yield from _serve(FakeThreatExchange(), _TeServer, _TeHandler)


# --- NCMEC hash sharing --------------------------------------------------------------------------------------------


@dataclass
class NcmecEntry:
    id: str
    member: int
    ts: int
    fingerprints: dict[str, str]
    classification: str = "A1"
    kind: str = "image"
    deleted: bool = False


@dataclass
class FakeNcmec:
    base: str = ""
    page_size: int = 2
    entries: list[NcmecEntry] = field(default_factory=list)
    feedback: list[tuple[str, bytes]] = field(default_factory=list)
    script: Script = field(default_factory=Script)

    @property
    def url(self) -> str:
        return f"{self.base}/npo"


def _ts(text: str) -> int:
    # The client formats local time with a literal Z (pytx's ``_date_format``); read it back the same way.
    return int(dt.datetime.strptime(text, NCMEC_DATE).timestamp())


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts).strftime(NCMEC_DATE)


class _NcmecServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeNcmec


class _NcmecHandler(_Handler):
    server: _NcmecServer

    def _checked(self) -> bool:
        failure = self.server.fake.script.next_failure(self.path)
        if failure:
            self._xml(failure, "<error>scripted</error>")
            return False
        expected = base64.b64encode(f"{NCMEC_USER}:{NCMEC_PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._xml(401, "<error>Unauthorized</error>")
            return False
        return True

    def do_GET(self) -> None:
        if not self._checked():
            return
        fake = self.server.fake
        parts = urlsplit(self.path)
        if parts.path != "/npo/v2/entries":
            self._xml(404, "<error>not found</error>")
            return
        query = parse_qs(parts.query)
        start, end = _ts(query["from"][0]), _ts(query["to"][0])
        offset = int(query.get("start", ["0"])[0])
        found = sorted((e for e in fake.entries if start <= e.ts < end), key=lambda e: e.id)
        page = found[offset:offset + fake.page_size]
        images = [e for e in page if e.kind == "image"]
        xml = ['<?xml version="1.0" encoding="UTF-8"?>',
               '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">']
        if images:
            xml.append(f'<images count="{len(images)}" maxTimestamp="{_date(max(e.ts for e in page))}">')
            for e in images:
                tag = "deletedImage" if e.deleted else "image"
                prints = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in e.fingerprints.items())
                xml.append(f'<{tag}><id>{e.id}</id><member id="{e.member}">ESP {e.member}</member>'
                           f'<timestamp>{_date(e.ts)}</timestamp>'
                           + ("" if e.deleted else f"<classification>{e.classification}</classification>"
                              f"<fingerprints>{prints}</fingerprints>") + f"</{tag}>")
            xml.append("</images>")
        if offset + fake.page_size < len(found):
            more = urlencode({"from": query["from"][0], "to": query["to"][0], "start": offset + fake.page_size,
                              "size": fake.page_size, "max": len(found)})
            xml.append(f"<paging><next>{escape('/v2/entries?' + more)}</next></paging>")
        xml.append("</queryResult>")
        self._xml(200, "".join(xml))

    def do_PUT(self) -> None:
        if not self._checked():
            return
        length = int(self.headers.get("Content-Length", "0"))
        self.server.fake.feedback.append((urlsplit(self.path).path, self.rfile.read(length)))
        self._xml(200, "<feedbackResult/>")


@pytest.fixture
def ncmec_hashes() -> Iterator[FakeNcmec]:
    yield from _serve(FakeNcmec(), _NcmecServer, _NcmecHandler)


# --- StopNCII ------------------------------------------------------------------------------------------------------

NCII_FETCH_KEY, NCII_SUBSCRIPTION, NCII_FEEDBACK_KEY = "fetch-key", "subscription-key", "feedback-key"


@dataclass
class FakeStopNcii:
    """StopNCII.org's ``/v1/FetchHashes`` (function key and APIM subscription key headers, ``startTimestamp``,
    ``nextPageToken`` pages, ``nextSetTimestamp``) and ``/v1/SubmitFeedback``."""

    base: str = ""
    page_size: int = 2
    records: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    script: Script = field(default_factory=Script)

    @property
    def url(self) -> str:
        return f"{self.base}/v1"

    def put(self, value: str, *, time: int, kind: str = "ImagePDQ", status: str = "Active",
            tags: tuple[str, ...] = ()) -> None:
        self.records = [r for r in self.records if r["hashValue"] != value]
        self.records.append({"lastModtimestamp": time, "signalType": kind, "hashValue": value, "hashStatus": status,
                             "caseNumbers": {f"case-{value[:6]}": status},
                             "CSPFeedbacks": [{"feedbackValue": "Blocked", "tags": list(tags), "source": "csp-1"}]
                             if tags else []})


class _NciiServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeStopNcii


class _NciiHandler(_Handler):
    server: _NciiServer

    def _checked(self, function_key: str) -> bool:
        failure = self.server.fake.script.next_failure(self.path)
        if failure:
            self._json(failure, {"error": "scripted"})
            return False
        if self.headers.get("Ocp-Apim-Subscription-Key") != NCII_SUBSCRIPTION:
            self._json(401, {"statusCode": 401, "message": "Access denied due to invalid subscription key."})
            return False
        if self.headers.get("x-functions-key") != function_key:
            self._json(401, {"error": "invalid function key"})
            return False
        return True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/v1/FetchHashes" or not self._checked(NCII_FETCH_KEY):
            if parts.path != "/v1/FetchHashes":
                self._json(404, {"error": "not found"})
            return
        fake = self.server.fake
        query = parse_qs(parts.query)
        start = int(query["startTimestamp"][0])
        offset = int(query.get("nextPageToken", ["0"])[0])
        found = sorted((r for r in fake.records if r["lastModtimestamp"] >= start),
                       key=lambda r: (r["lastModtimestamp"], r["hashValue"]))
        page = found[offset:offset + fake.page_size]
        more = offset + fake.page_size < len(found)
        self._json(200, {"count": len(page), "hashRecords": page, "hasMoreRecords": more,
                         "nextPageToken": str(offset + fake.page_size) if more else None,
                         "nextSetTimestamp": max([start, *(r["lastModtimestamp"] for r in page)])})

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/v1/SubmitFeedback" or not self._checked(NCII_FEEDBACK_KEY):
            return
        length = int(self.headers.get("Content-Length", "0"))
        self.server.fake.feedback.append(json.loads(self.rfile.read(length)))
        self._json(200, {})


@pytest.fixture
def stop_ncii() -> Iterator[FakeStopNcii]:
    yield from _serve(FakeStopNcii(), _NciiServer, _NciiHandler)


# --- Tech Against Terrorism ---------------------------------------------------------------------------------------

TAT_USER, TAT_PASSWORD, TAT_JWT = "tcap-user", "tcap-pass", "jwt-for-tcap-user"


@dataclass
class FakeTat:
    """TCAP's ``token-auth/tcap/`` (form login answering a JWT) and ``api/hash-list/v2/all`` (Bearer JWT, records
    after a ``"<updated_on>,<id>"`` checkpoint in ascending order, ``limit``/``offset`` pages whose ``next`` is the
    query the client appends)."""

    base: str = ""
    page_size: int = 2
    records: list[dict[str, Any]] = field(default_factory=list)
    script: Script = field(default_factory=Script)

    @property
    def url(self) -> str:
        return f"{self.base}/"

    def put(self, record_id: int, digest: str, *, updated: float, algorithm: str = "PDQ",
            ideology: str = "islamist", deleted: bool = False) -> None:
        self.records = [r for r in self.records if r["id"] != record_id]
        self.records.append({"hash_digest": digest, "algorithm": algorithm, "ideology": ideology,
                             "file_type": "mp4" if algorithm == "MD5" else "jpg", "deleted": deleted,
                             "updated_on": updated, "created_on": "2026-01-01T00:00:00Z", "id": record_id})


class _TatServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTat


class _TatHandler(_Handler):
    server: _TatServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        if self.server.fake.script.next_failure(self.path):
            self._json(503, {"detail": "scripted"})
        elif urlsplit(self.path).path != "/token-auth/tcap/":
            self._json(404, {"detail": "Not found."})
        elif form.get("username") != [TAT_USER] or form.get("password") != [TAT_PASSWORD]:
            self._json(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
        else:
            self._json(200, {"token": TAT_JWT, "user": {"username": TAT_USER}})

    def do_GET(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        failure = fake.script.next_failure(self.path)
        if failure:
            self._json(failure, {"detail": "scripted"})
            return
        if parts.path != "/api/hash-list/v2/all":
            self._json(404, {"detail": "Not found."})
            return
        if self.headers.get("Authorization") != f"Bearer {TAT_JWT}":
            self._json(401, {"detail": "Authentication credentials were not provided."})
            return
        query = parse_qs(parts.query)
        after = query.get("after", [""])[0]
        mark = (float(after.split(",")[0]), int(after.split(",")[1])) if after else (float("-inf"), -1)
        offset = int(query.get("offset", ["0"])[0])
        found = sorted((r for r in fake.records if (r["updated_on"], r["id"]) > mark),
                       key=lambda r: (r["updated_on"], r["id"]))
        page = found[offset:offset + fake.page_size]
        more = offset + fake.page_size < len(found)
        last = page[-1] if page else None
        self._json(200, {"count": len(found), "results": page,
                         "next": urlencode({"limit": fake.page_size, "offset": offset + fake.page_size})
                         if more else None,
                         "previous": None,
                         "checkpoint": f"{last['updated_on']},{last['id']}" if last else ""})


@pytest.fixture
def tat() -> Iterator[FakeTat]:
    yield from _serve(FakeTat(), _TatServer, _TatHandler)
