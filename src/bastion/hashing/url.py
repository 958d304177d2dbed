"""URLs, matched exactly after canonicalisation: trivially different spellings of one address are one value.

Canonical form (``canonical_url``):

- scheme ``http`` or ``https``, lowercased; a URL written without one (``example.com/a``, ``//example.com/a``)
  is taken as ``http``; any other scheme is refused;
- user name and password dropped (``https://bank.example@evil.example/`` is a host-hiding trick, not
  identity);
- host lowercased, a trailing dot removed, internationalised names in punycode (IDNA 2008 with UTS 46
  mapping), IP addresses in their standard text form; the host must contain a dot or be an IP address.
  ``www.`` is kept: ``www.example.com`` and ``example.com`` are different hosts and may serve different
  things;
- port dropped when it is the scheme's default (80, 443);
- path: percent-encoding normalised (``%7e`` -> ``~``: unreserved characters decoded, other escapes
  upper-cased, characters that need escaping escaped as UTF-8), ``.`` and ``..`` segments resolved, empty path
  -> ``/``; case and trailing slashes are kept (servers may treat them differently);
- query: empty parameters dropped, tracking parameters dropped (``TRACKING_PARAMETERS`` and every ``utm_*``,
  compared case-insensitively), the rest percent-normalised and sorted; ``+`` is left as it is;
- fragment dropped (never sent to the server).

``hash_text`` finds ``http://``, ``https://`` and bare ``www.`` URLs in a text. A bare ``www.`` URL has no
scheme to trust, so it yields both its ``http`` and ``https`` forms. Bare domains without ``www.``
(``evil.example/x``) are not extracted: too much ordinary prose looks like them (``e.g.``, ``file.txt``).
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Sequence
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

import idna

from bastion.hashing.exact import ExactSignal
from bastion.hashing.interfaces import HashResult, InvalidSignalValue, TextHasher

__all__ = ["MAX_URL_LENGTH", "TRACKING_PARAMETERS", "UrlSignal", "canonical_url", "find_urls"]

#: Query parameters that only say where a click came from (ads, newsletters, share buttons).
TRACKING_PARAMETERS: Final = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok",
        "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "si", "ref_src", "ref_url",
    }
)
_TRACKING_PREFIXES: Final = ("utm_",)
#: Longer values are refused: no real address is this long, and values are stored and indexed whole.
MAX_URL_LENGTH: Final = 8192

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}
_UNRESERVED: Final = frozenset(string.ascii_letters + string.digits + "-._~")
_SUB_DELIMS: Final = "!$&'()*+,;="
_PATH_SAFE: Final = frozenset(_UNRESERVED | set(_SUB_DELIMS) | set(":@/"))
_QUERY_SAFE: Final = frozenset((_PATH_SAFE | set("?")) - set("&"))
_HEX: Final = frozenset(string.hexdigits)
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?!\d)")
_HOST_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_URL_IN_TEXT: Final = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"'`]+")
_TRAILING: Final = ".,;:!?\"')]}>*"
_CLOSERS: Final = {")": "(", "]": "[", "}": "{"}


class UrlSignal(ExactSignal, TextHasher):
    """Canonical URLs; exact matching (distance 0 or 1)."""

    name = "url"
    default_threshold = 0
    max_threshold = 0

    @classmethod
    def validate(cls, value: str) -> str:
        return canonical_url(value)

    @classmethod
    def examples(cls) -> Sequence[str]:
        return ("https://example.com/", "http://www.example.org/path?a=1&b=2", "https://xn--bcher-kva.example/")

    @classmethod
    def hash_text(cls, text: str) -> list[HashResult]:
        return [HashResult(cls.name, url) for url in find_urls(text)]


def find_urls(text: str) -> list[str]:
    """Canonical forms of the URLs in a text, in order of appearance, each once; malformed ones skipped."""
    found: dict[str, None] = {}
    for match in _URL_IN_TEXT.finditer(text):
        raw = _trim(match.group())
        spellings = [raw] if "://" in raw else [f"http://{raw}", f"https://{raw}"]
        for spelling in spellings:
            try:
                found.setdefault(canonical_url(spelling), None)
            except InvalidSignalValue:
                continue
    return list(found)


def _trim(url: str) -> str:
    """Drop sentence punctuation after a URL, but keep a closing bracket that the URL itself opened."""
    while url and url[-1] in _TRAILING:
        last = url[-1]
        if last in _CLOSERS and url.count(_CLOSERS[last]) >= url.count(last):
            break
        url = url[:-1]
    return url


def canonical_url(value: str) -> str:
    """The canonical form (see the module docstring); ``InvalidSignalValue`` says what is wrong."""
    text = value.strip()
    if not text:
        raise InvalidSignalValue("a URL cannot be empty")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidSignalValue(f"a URL is at most {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InvalidSignalValue("a URL cannot contain control characters")
    parts = _split(text)
    scheme = parts.scheme.lower()
    host, port = _authority(parts.netloc)
    if port == _DEFAULT_PORTS[scheme]:
        port = ""
    path = _remove_dot_segments(_escape(parts.path, _PATH_SAFE)) or "/"
    query = _query(parts.query)
    return f"{scheme}://{host}{':' + port if port else ''}{path}{'?' + query if query else ''}"


def _split(text: str) -> SplitResult:
    scheme = _SCHEME.match(text)
    if scheme is None or not text[scheme.end() :].startswith("//"):
        if scheme is not None and scheme.group(1).lower() not in _DEFAULT_PORTS:
            raise InvalidSignalValue(f"only http and https URLs are accepted, not {scheme.group(1)}:")
        text = "http:" + text if text.startswith("//") else "http://" + text
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise InvalidSignalValue(f"not a URL: {exc}") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise InvalidSignalValue(f"only http and https URLs are accepted, not {parts.scheme}:")
    return parts


def _authority(netloc: str) -> tuple[str, str]:
    """(canonical host, port or '') of a network location, without any user info."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        inside, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidSignalValue("a bracketed IPv6 host is not closed")
        return _ipv6(inside), _port(rest[1:] if rest else "")
    host, _, port = hostport.partition(":")
    return _host(host), _port(port)


def _port(port: str) -> str:
    if not port:
        return ""
    # ASCII only: str.isdigit() also takes "²" (which int() refuses) and "٨٠" (which int() reads as 80).
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise InvalidSignalValue(f"the port {port!r} is not a number from 1 to 65535")
    return str(int(port))


def _ipv6(text: str) -> str:
    try:
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        raise InvalidSignalValue(f"{text!r} is not an IPv6 address") from None


def _host(raw: str) -> str:
    host = unquote(raw).lower().rstrip(".")
    if not host:
        raise InvalidSignalValue("a URL needs a host")
    if all(label.isdigit() for label in host.split(".")):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise InvalidSignalValue(f"{raw!r} is not an IPv4 address") from None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidSignalValue(f"the host {raw!r} is not a valid domain name: {exc}") from None
    labels = host.split(".")
    if len(labels) < 2:
        raise InvalidSignalValue(f"the host {raw!r} has no dot: give a full domain name")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidSignalValue(f"the host {raw!r} is not a valid domain name")
    return host


def _escape(component: str, safe: frozenset[str]) -> str:
    """Percent-encoding normalised: unreserved escapes decoded, others upper-cased, unsafe characters
    escaped."""
    out: list[str] = []
    i = 0
    while i < len(component):
        char = component[i]
        if char == "%" and len(component[i + 1 : i + 3]) == 2 and set(component[i + 1 : i + 3]) <= _HEX:
            code = component[i + 1 : i + 3].upper()
            decoded = chr(int(code, 16))
            out.append(decoded if decoded in _UNRESERVED else f"%{code}")
            i += 3
            continue
        if char in safe:
            out.append(char)
        else:
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8", errors="surrogatepass")))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path: ``/a/./b/../c`` -> ``/a/c``."""
    if not path:
        return ""
    segments = path.split("/")[1:] if path.startswith("/") else path.split("/")
    kept: list[str] = []
    for n, segment in enumerate(segments):
        last = n == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and kept:
                kept.pop()
            if last:
                kept.append("")
            continue
        kept.append(segment)
    return "/" + "/".join(kept)


def _query(query: str) -> str:
    params = []
    for part in query.split("&"):
        if not part:
            continue
        name = part.partition("=")[0]
        if _is_tracking(name):
            continue
        params.append(_escape(part, _QUERY_SAFE))
    return "&".join(sorted(params, key=lambda p: p.partition("=")[::2]))


def _is_tracking(name: str) -> bool:
    decoded = unquote(name).lower()
    return decoded in TRACKING_PARAMETERS or decoded.startswith(_TRACKING_PREFIXES)
