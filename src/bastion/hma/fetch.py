"""HMA's ``?url=`` forms: Bastion fetches the media itself, but only from hosts on an allow-list, and never from an
internal address.

A server that fetches any URL it is given is a proxy into its own network (server-side request forgery): the cloud's
metadata service, the database, an admin port on loopback. So fetching is off until ``BASTION_HMA_FETCH_HOSTS``
names the hosts that serve media; each host is resolved, every address it resolves to must be a public one, and the
connection goes to the address that was checked (the name is not resolved a second time, so a rebinding DNS server
cannot swap in 127.0.0.1 between the check and the request). Redirects are refused, not followed: each hop would need
the same checks, and media hosts that HMA's clients point at answer directly.

Don't: allow "internal" hosts through a setting. A host on the allow-list that resolves inward is refused all the same.
"""

from __future__ import annotations

import ipaddress
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from bastion.hma.interfaces import FetchRefused, HmaError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]
FETCH_TIMEOUT_SECONDS = 30.0
_CHUNK = 64 * 1024


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (IPv4 and IPv6), as the system resolver answers now."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchRefused(f"the url's host {host!r} does not resolve: {exc.strerror}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def internal_address(address: IPAddress) -> bool:
    """Loopback, private, link-local (the cloud metadata service), multicast, reserved, unspecified, shared
    (100.64/10): anything not globally routable, IPv4 addresses mapped into IPv6 included."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class Fetched:
    """Media fetched to a private temporary file, with the type its server declared."""

    path: Path
    content_type: str


class UrlFetcher:
    """Fetches allow-listed media for the ``?url=`` forms; ``resolver`` and ``refuse`` are arguments only so tests
    can point an allow-listed name at a loopback fake (the production ``refuse`` is ``internal_address``)."""

    def __init__(self, allowed_hosts: tuple[str, ...], *, max_bytes: int, resolver: Resolver = resolve,
                 refuse: Callable[[IPAddress], bool] = internal_address) -> None:
        self.allowed_hosts = frozenset(h.strip().lower() for h in allowed_hosts if h.strip())
        self.max_bytes = max_bytes
        self._resolve = resolver
        self._refuse = refuse

    def checked_address(self, url: str) -> tuple[str, str, int, IPAddress]:
        """The url's scheme, host, port and the public address to connect to; ``FetchRefused`` with the reason."""
        if not self.allowed_hosts:
            raise FetchRefused("fetching by url is off on this server (BASTION_HMA_FETCH_HOSTS is unset): "
                               "upload the file instead")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused("url must be an http or https URL with a host")
        host = parts.hostname.lower()
        if host not in self.allowed_hosts:
            raise FetchRefused(f"host {host!r} is not on this server's allow-list (BASTION_HMA_FETCH_HOSTS)")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchRefused("url has an invalid port") from None
        addresses = self._resolve(host, port)
        if not addresses:
            raise FetchRefused(f"the url's host {host!r} does not resolve")
        if any(self._refuse(a) for a in addresses):
            raise FetchRefused(f"host {host!r} resolves to an internal address: refused")
        return parts.scheme, host, port, addresses[0]

    @contextmanager
    def fetch(self, url: str, directory: Path) -> Iterator[Fetched]:
        """Download ``url`` into ``directory`` (deleted afterwards), refusing it past ``max_bytes``."""
        scheme, host, port, address = self.checked_address(url)
        parts = urlsplit(url)
        literal = f"[{address}]" if address.version == 6 else str(address)
        pinned = urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        default_port = port == (443 if scheme == "https" else 80)
        headers = {"Host": host if default_port else f"{host}:{port}"}
        fd, name = tempfile.mkstemp(prefix="bastion-fetch-", dir=directory)
        path = Path(name)
        try:
            with open(fd, "wb") as out, httpx.Client(follow_redirects=False, timeout=FETCH_TIMEOUT_SECONDS) as client:
                try:
                    with client.stream("GET", pinned, headers=headers, extensions={"sni_hostname": host}) as resp:
                        content_type = _checked_answer(resp)
                        size = 0
                        for chunk in resp.iter_bytes(_CHUNK):
                            size += len(chunk)
                            if size > self.max_bytes:
                                raise HmaError(413, f"the fetched file is larger than {self.max_bytes} bytes")
                            out.write(chunk)
                except httpx.HTTPError as exc:
                    raise HmaError(400, f"fetching the url failed: {type(exc).__name__}") from None
            if size == 0:
                raise HmaError(400, "the fetched file is empty")
            yield Fetched(path, content_type)
        finally:
            path.unlink(missing_ok=True)


def _checked_answer(resp: httpx.Response) -> str:
    if resp.is_redirect:
        raise FetchRefused(f"the url answered a redirect ({resp.status_code}); redirects are not followed")
    if resp.status_code != 200:
        raise HmaError(400, f"fetching the url answered {resp.status_code}")
    return str(resp.headers.get("content-type", ""))
