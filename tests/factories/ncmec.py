"""A fake NCMEC CyberTipline Reporting API on loopback, speaking the documented calls over real HTTP.

It checks HTTP Basic auth, validates ``<report>`` and ``<fileDetails>`` against the reference XSD (4100 when they
do not), hands out report ids and file ids, computes the MD5 of uploads, and answers 5101/5102 to a second retract
or finish. Tests script errors per call: a response code for the next n calls,
or a dropped connection, or a wrong MD5 in the next upload answers (a corrupted transfer).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from lxml import etree

from tests.factories.live import loopback

XSD = Path(__file__).resolve().parents[1] / "data" / "ncmec" / "cybertipline-report.xsd"  # see its README
USERNAME, PASSWORD = "esp-test", "s3cret-pass"


@dataclass
class FakeReport:
    xml: bytes
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: bool = False
    retracted: bool = False


@dataclass
class FakeNcmec:
    url: str = ""
    reports: dict[int, FakeReport] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    #: path -> response codes to answer next (instead of doing the work), or -1 to drop the connection.
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(100_001))
    schema: Any = None
    #: Upload answers still to come with an MD5 that is not the file's.
    wrong_md5: int = 0

    def fail_next(self, path: str, code: int, times: int = 1) -> None:
        with self.lock:
            self.script.setdefault(path, []).extend([code] * times)

    def scripted(self, path: str) -> int | None:
        with self.lock:
            self.calls.append(path)
            queue = self.script.get(path)
            return queue.pop(0) if queue else None

    def count(self, path: str) -> int:
        return self.calls.count(path)


def _response(code: int, description: str = "", **extra: str) -> bytes:
    root = etree.Element("reportResponse")
    etree.SubElement(root, "responseCode").text = str(code)
    etree.SubElement(root, "responseDescription").text = description or ("Success" if code == 0 else "Error")
    for tag in ("reportId", "fileId", "hash"):
        if tag in extra:
            etree.SubElement(root, tag).text = extra[tag]
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeNcmec


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Request-ID", f"req-{len(self.server.fake.calls)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            return True
        self._reply(_response(2000, "Authentication required"), 401)
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.endswith("/xsd"):
            self._reply(XSD.read_bytes())
        else:
            self._reply(_response(0, "Server is up"))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not self._authorised():
            return
        fake = self.server.fake
        path = "/" + self.path.rstrip("/").rsplit("/", 1)[-1]
        code = fake.scripted(path)
        if code == -1:  # the connection drops before any answer
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if code is not None:
            self._reply(_response(code, "Scripted error"))
            return
        handler = {"/submit": self._submit, "/upload": self._upload, "/fileinfo": self._fileinfo,
                   "/finish": self._finish, "/retract": self._retract}.get(path)
        self._reply(handler(body) if handler else _response(4000, "Invalid request"))

    def _valid(self, body: bytes) -> Any:
        try:
            tree = etree.fromstring(body)
        except etree.XMLSyntaxError:
            return None
        return tree if self.server.fake.schema.validate(tree) else False

    def _submit(self, body: bytes) -> bytes:
        tree = self._valid(body)
        if tree is None:
            return _response(4110, "Malformed XML")
        if tree is False:
            return _response(4100, "Validation failed")
        fake = self.server.fake
        with fake.lock:
            report_id = next(fake.ids)
            fake.reports[report_id] = FakeReport(body)
        return _response(0, reportId=str(report_id))

    def _form(self, body: bytes) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}

    def _report(self, raw: str) -> FakeReport | None:
        return self.server.fake.reports.get(int(raw)) if raw.isdigit() else None

    def _upload(self, body: bytes) -> bytes:
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
        report = self._report(str(parts["id"].get_content()).strip()) if "id" in parts else None
        if report is None:
            return _response(5001, "Report does not exist")
        if report.finished:
            return _response(5102, "Report already finished")
        data = parts["file"].get_payload(decode=True)
        assert isinstance(data, bytes)
        file_id = hashlib.sha1(data + str(len(report.files)).encode()).hexdigest()[:16]
        md5 = hashlib.md5(data).hexdigest()
        with self.server.fake.lock:
            if self.server.fake.wrong_md5 > 0:
                self.server.fake.wrong_md5 -= 1
                md5 = hashlib.md5(data + b"corrupted").hexdigest()
        report.files[file_id] = {"md5": md5, "size": len(data), "details": None}
        return _response(0, reportId=str(self._id(report)), fileId=file_id, hash=md5)

    def _id(self, report: FakeReport) -> int:
        return next(k for k, v in self.server.fake.reports.items() if v is report)

    def _fileinfo(self, body: bytes) -> bytes:
        tree = self._valid(body)
        if tree is None or tree is False:
            return _response(4100, "Validation failed")
        report = self._report(tree.findtext("reportId"))
        if report is None:
            return _response(5001, "Report does not exist")
        file_id = tree.findtext("fileId")
        if file_id not in report.files:
            return _response(5002, "File does not exist")
        report.files[file_id]["details"] = body
        return _response(0, reportId=str(self._id(report)))

    def _finish(self, body: bytes) -> bytes:
        report = self._report(self._form(body).get("id", ""))
        if report is None:
            return _response(5001, "Report does not exist")
        if report.finished:
            return _response(5102, "Report already finished")
        report.finished = True
        root = etree.Element("reportDoneResponse")
        etree.SubElement(root, "responseCode").text = "0"
        etree.SubElement(root, "reportId").text = str(self._id(report))
        files = etree.SubElement(root, "files")
        for file_id in report.files:
            etree.SubElement(files, "fileId").text = file_id
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    def _retract(self, body: bytes) -> bytes:
        report = self._report(self._form(body).get("id", ""))
        if report is None:
            return _response(5001, "Report does not exist")
        if report.retracted:
            return _response(5101, "Report already retracted")
        report.retracted = True
        return _response(0)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_ncmec() -> Iterator[FakeNcmec]:
    server = _Server(("127.0.0.1", 0), _Handler)
    with loopback(server) as base:
        server.fake = FakeNcmec(url=f"{base}/ispws", schema=etree.XMLSchema(etree.parse(str(XSD))))
        yield server.fake
