"""NCMEC CyberTipline: the ``<report>`` and ``<fileDetails>`` XML, its schema check, and a client for the API.

The XML is built from the report's data and validated against the XSD before anything is sent; a report that
does not validate stays here with the schema's reason. The schema is not downloaded at run time: the operator
places NCMEC's copy (``GET /ispws/xsd``) at ``BASTION_NCMEC_XSD``; without it nothing is sent (fail closed).

Response codes map to what the sender does (``code_outcome``): retry with back-off on server-side failures,
stop and ask a person on authentication, authorisation and validation failures (sending the same request again
cannot help, and blind retries on bad credentials can lock the account).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from lxml import etree

from bastion.core.outbox.services import RETRYABLE_4XX
from bastion.reporting.interfaces import DestinationRefused, InvalidReport

PRODUCTION_URL = "https://report.cybertip.org/ispws"
TEST_URL = "https://exttest.cybertip.org/ispws"
PRODUCTION_HOST = "report.cybertip.org"
#: ``/fileinfo`` for a file NCMEC does not have: upload that file again, not the whole report.
FILE_GONE = 5002
CSAM_INCIDENT = "Child Pornography (possession, manufacture, and distribution)"
ENTICEMENT_INCIDENT = "Online Enticement of Children for Sexual Acts"
#: lxml parser for everything NCMEC answers: no entities, no network, no huge trees.
_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)


class CodeOutcome(enum.StrEnum):
    OK = "ok"
    RETRY = "retry"  # 1000, 1100, 1110, 1111, 1210, 1300: NCMEC's side failed; try again later
    AUTH = "auth"  # 2000, 3000, 3100, 3300: credentials or permissions; a person must fix them
    REJECTED = "rejected"  # 4000, 4100, 4110, 4200: the request is wrong; it will never pass as it is
    GONE = "gone"  # 5001, 5002: the report or file does not exist (e.g. deleted unfinished after 24 h)
    ALREADY_FINISHED = "already_finished"  # 5102
    ALREADY_RETRACTED = "already_retracted"  # 5101


_CODES: dict[int, CodeOutcome] = {
    0: CodeOutcome.OK,
    # 1210 "not found" is listed among NCMEC's server-side failures (a lookup that failed): try again.
    1000: CodeOutcome.RETRY, 1100: CodeOutcome.RETRY, 1110: CodeOutcome.RETRY, 1111: CodeOutcome.RETRY,
    1210: CodeOutcome.RETRY, 1300: CodeOutcome.RETRY,
    5001: CodeOutcome.GONE, 5002: CodeOutcome.GONE,
    2000: CodeOutcome.AUTH, 3000: CodeOutcome.AUTH, 3100: CodeOutcome.AUTH, 3300: CodeOutcome.AUTH,
    4000: CodeOutcome.REJECTED, 4100: CodeOutcome.REJECTED, 4110: CodeOutcome.REJECTED, 4200: CodeOutcome.REJECTED,
    5101: CodeOutcome.ALREADY_RETRACTED, 5102: CodeOutcome.ALREADY_FINISHED,
}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, production: bool) -> str:
    """``url`` when reports may go there: HTTPS (plain HTTP only on loopback, for a local fake), and NCMEC's
    production system only when an operator switched it on (``BASTION_NCMEC_PRODUCTION=1``)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not _loopback(host)):
        raise DestinationRefused(f"NCMEC URL {parts.scheme}://{host} refused: HTTPS is required off loopback")
    if (host == PRODUCTION_HOST or host.endswith("." + PRODUCTION_HOST)) and not production:
        raise DestinationRefused("the NCMEC URL is the production system, which is not switched on "
                                 "(BASTION_NCMEC_PRODUCTION=1)")
    return url


def code_outcome(code: int) -> CodeOutcome:
    """What a response code means for the sender; an unknown code is retried (it may be a new server error)."""
    return _CODES.get(code, CodeOutcome.RETRY)


# --- the XML ------------------------------------------------------------------------------------------------------

#: Characters XML 1.0 cannot carry at all (lxml raises ValueError on them): C0 controls but tab, LF and CR,
#: surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_unsafe(text: str) -> bool:
    """Whether ``text`` holds a character no XML document can carry (refuse it where a person typed it)."""
    return _NOT_XML.search(text) is not None


def xml_safe(text: str) -> str:
    """``text`` without the characters XML cannot carry (for names and URLs that come from elsewhere)."""
    return _NOT_XML.sub("", text)



@functools.lru_cache(maxsize=4)
def _schema(path: str) -> Any:
    return etree.XMLSchema(etree.parse(path, _SAFE))


def load_schema(xsd: Path | None) -> Any:
    """The CyberTipline schema, or ``InvalidReport`` saying why there is none (not configured, does not load)."""
    if xsd is None:
        raise InvalidReport("no CyberTipline schema configured (BASTION_NCMEC_XSD): nothing is sent unvalidated")
    try:
        return _schema(str(xsd))
    except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise InvalidReport(f"the CyberTipline schema at {xsd} does not load: {type(exc).__name__}") from None


def validate(document: bytes, xsd: Path | None) -> None:
    """Raise ``InvalidReport`` with the schema's first complaints unless ``document`` is valid."""
    schema = load_schema(xsd)
    tree = etree.fromstring(document, _SAFE)
    if not schema.validate(tree):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(schema.error_log)[:3])
        raise InvalidReport(f"the report does not validate against the CyberTipline schema: {errors}")


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sub(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _bool(value: bool) -> str:
    return "true" if value else "false"


@dataclass(frozen=True)
class Reporter:
    """Who reports (the platform): NCMEC's ``reporter`` section."""

    platform: str
    email: str
    first_name: str = ""
    last_name: str = ""
    terms_of_service: str = ""


@dataclass(frozen=True)
class ReportFacts:
    """What the ``<report>`` says, gathered by the services from the report, its files and the content items."""

    incident_type: str
    incident_at: dt.datetime
    account_id: str
    urgent_reason: str
    urls: Sequence[str]
    reference: str
    #: Files described in ``additionalInfo`` because their bytes are not held (hashes only).
    described_files: Sequence[str] = field(default_factory=tuple)
    also_reported_to: str = ""
    account_disabled: bool = False
    #: Other uploads of a reported file by the same account (other incidents of the same material).
    repeated_uploads: Sequence[str] = field(default_factory=tuple)
    #: Online enticement: the minors the reported user tried to reach (ESP ids only), and each attempt in words.
    victims: Sequence[str] = field(default_factory=tuple)
    attempts: Sequence[str] = field(default_factory=tuple)


def _built(build: Callable[[], bytes]) -> bytes:
    """A document that cannot be built (lxml's ValueError on a character XML cannot carry) is an invalid report."""
    try:
        return build()
    except ValueError as exc:
        raise InvalidReport(f"the report cannot be written as XML: {exc}") from None


def report_xml(facts: ReportFacts, reporter: Reporter) -> bytes:
    """The ``<report>`` document, elements in the schema's order."""
    return _built(lambda: _report_xml(facts, reporter))


def _report_xml(facts: ReportFacts, reporter: Reporter) -> bytes:
    root = etree.Element("report")
    summary = _sub(root, "incidentSummary")
    _sub(summary, "incidentType", facts.incident_type)
    _sub(summary, "platform", reporter.platform)
    if facts.urgent_reason:
        _sub(summary, "escalateToHighPriority", facts.urgent_reason)
    _sub(summary, "incidentDateTime", iso(facts.incident_at))
    # The schema asks for at least one ``internetDetails`` per report: without a public URL (blocked at upload,
    # never published) it says where the incident happened, the platform, and why there is no URL.
    page = _sub(_sub(root, "internetDetails"), "webPageIncident")
    for url in facts.urls:
        _sub(page, "url", url)
    if not facts.urls and facts.victims:
        _sub(page, "additionalInfo", f"Contacts between accounts on {reporter.platform} (messages, follows, "
                                     "comments, mentions, group invitations); no public URL.")
    elif not facts.urls:
        _sub(page, "additionalInfo", f"Uploaded to {reporter.platform}; no public URL (the material was blocked or "
                                     "removed before it was published).")
    who = _sub(root, "reporter")
    person = _sub(who, "reportingPerson")
    if reporter.first_name:
        _sub(person, "firstName", reporter.first_name)
    if reporter.last_name:
        _sub(person, "lastName", reporter.last_name)
    _sub(person, "email", reporter.email)
    if reporter.terms_of_service:
        _sub(who, "termsOfService", reporter.terms_of_service)
    user = _sub(root, "personOrUserReported")
    _sub(user, "espIdentifier", facts.account_id)
    _sub(user, "espService", reporter.platform)
    if facts.account_disabled:
        _sub(user, "accountPermanentlyDisabled", "true")
    for victim in facts.victims:  # the ids only: NCMEC can ask the platform for more under legal process
        child = _sub(root, "victim")
        _sub(child, "victimPerson")
        _sub(child, "espIdentifier", victim)
        _sub(child, "espService", reporter.platform)
    notes = [f"Provider reference {facts.reference}."]
    if facts.also_reported_to:
        notes.append(facts.also_reported_to)
    if facts.described_files:
        notes.append("Files not attached (hashes only): " + "; ".join(facts.described_files) + ".")
    if facts.repeated_uploads:
        notes.append("The account uploaded a reported file again: " + "; ".join(facts.repeated_uploads) + ".")
    if facts.attempts:
        notes.append("The reported user's attempts to reach minors (UTC; the minors are the victims named by their "
                     "ids): " + "; ".join(facts.attempts) + ".")
    _sub(root, "additionalInfo", " ".join(notes))
    return cast(bytes, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True)
class FileFacts:
    report_id: str
    file_id: str
    #: The name of the file as the platform handed it in (``fileName``).
    file_name: str
    uploaded_at: dt.datetime
    viewed_by_esp: bool
    publicly_available: bool
    classification: str
    md5: str
    sha256: str
    #: The name the user uploaded it under (``originalFileName``), when the platform gave it at intake.
    original_file_name: str = ""


def file_details_xml(facts: FileFacts) -> bytes:
    return _built(lambda: _file_details_xml(facts))


def _file_details_xml(facts: FileFacts) -> bytes:
    root = etree.Element("fileDetails")
    _sub(root, "reportId", facts.report_id)
    _sub(root, "fileId", facts.file_id)
    if facts.file_name:
        _sub(root, "fileName", facts.file_name)
    if facts.original_file_name:
        _sub(root, "originalFileName", facts.original_file_name)
    _sub(root, "uploadedToEspTimestamp", iso(facts.uploaded_at))
    _sub(root, "fileViewedByEsp", _bool(facts.viewed_by_esp))
    _sub(root, "publiclyAvailable", _bool(facts.publicly_available))
    _sub(root, "fileRelevance", "Reported")
    if facts.classification:
        _sub(root, "industryClassification", facts.classification)
    if facts.md5:
        _sub(root, "originalFileHash", facts.md5, hashType="MD5")
    if facts.sha256:
        _sub(root, "originalFileHash", facts.sha256, hashType="SHA256")
    return cast(bytes, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# --- the client ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One response from NCMEC, whatever the call."""

    code: int
    description: str = ""
    report_id: str = ""
    file_id: str = ""
    md5: str = ""
    file_ids: tuple[str, ...] = ()
    #: NCMEC's ``Request-ID`` header: quote it when asking NCMEC for help.
    request_id: str = ""

    @property
    def outcome(self) -> CodeOutcome:
        return code_outcome(self.code)

    def summary(self) -> str:
        text = f"NCMEC {self.code}"
        if self.description:
            text += f" {self.description}"
        return text + (f" (Request-ID {self.request_id})" if self.request_id else "")


def _text(tree: Any, tag: str) -> str:
    found = tree.find(tag)
    return str(found.text or "").strip() if found is not None else ""


def parse_answer(response: httpx.Response) -> Answer:
    """Read a ``reportResponse`` or ``reportDoneResponse``; HTTP 401/403 and unreadable 5xx get their codes."""
    request_id = response.headers.get("Request-ID", "")
    if response.status_code in (401, 403):
        return Answer(2000 if response.status_code == 401 else 3000, "authentication failed", request_id=request_id)
    try:
        tree = etree.fromstring(response.content, _SAFE)
        code = int(_text(tree, "responseCode"))
    except (etree.XMLSyntaxError, ValueError):
        retry = response.status_code >= 500 or response.status_code in RETRYABLE_4XX
        code = 1000 if retry else 4000
        return Answer(code, f"unreadable answer (HTTP {response.status_code})", request_id=request_id)
    files = tree.find("files")
    file_ids = tuple(str(f.text or "") for f in files.findall("fileId")) if files is not None else ()
    return Answer(code, _text(tree, "responseDescription"), _text(tree, "reportId"), _text(tree, "fileId"),
                  _text(tree, "hash").lower(), file_ids, request_id)


class NcmecClient:
    """The documented calls over HTTP Basic auth. Transport errors raise ``httpx.HTTPError`` (retryable).

    Don't: log the credentials, the request bodies or the answers' bodies; follow redirects.
    """

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 30,
                 client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = httpx.BasicAuth(username, password)
        self._owns = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.timeout = timeout

    def __repr__(self) -> str:  # never the credentials
        return f"NcmecClient({self.base_url!r})"

    def _post(self, path: str, **kwargs: Any) -> Answer:
        response = self._client.post(f"{self.base_url}{path}", auth=self._auth, timeout=self.timeout, **kwargs)
        return parse_answer(response)

    def status(self) -> Answer:
        response = self._client.get(f"{self.base_url}/status", auth=self._auth, timeout=self.timeout)
        return parse_answer(response)

    def submit(self, report: bytes) -> Answer:
        return self._post("/submit", content=report, headers={"Content-Type": "text/xml; charset=utf-8"})

    def upload(self, report_id: str, file_name: str, data: bytes) -> Answer:
        return self._post("/upload", data={"id": report_id}, files={"file": (file_name or "file", data)})

    def file_info(self, details: bytes) -> Answer:
        return self._post("/fileinfo", content=details, headers={"Content-Type": "text/xml; charset=utf-8"})

    def finish(self, report_id: str) -> Answer:
        return self._post("/finish", data={"id": report_id})

    def retract(self, report_id: str) -> Answer:
        return self._post("/retract", data={"id": report_id})

    def close(self) -> None:
        if self._owns:
            self._client.close()
