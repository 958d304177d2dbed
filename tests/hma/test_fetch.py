"""HMA's ``?url=`` forms: off without an allow-list, never to an internal address, no redirects followed."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi import FastAPI

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing.services import hash_path
from bastion.hma.fetch import IPAddress, UrlFetcher, internal_address
from bastion.web.app import create_app
from tests.factories.hma import HmaClient
from tests.factories.live import loopback, serve
from tests.factories.media import make_image


class MediaHost(ThreadingHTTPServer):
    """A media server on loopback that records what it was asked."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: MediaHost

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/photo.jpg")
            self.end_headers()
            return
        content_type, body = self.server.files.get(self.path, ("text/plain", b""))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return make_image(tmp_path / "known.jpg", seed=31)


@pytest.fixture
def media(photo: Path) -> Iterator[tuple[MediaHost, str]]:
    server = MediaHost({"/photo.jpg": ("image/jpeg", photo.read_bytes()),
                        "/blob": ("application/octet-stream", photo.read_bytes())})
    with loopback(server) as base:
        yield server, base


def _serve(settings: Settings, db: Database, token: str, setup: Callable[[FastAPI], None] = lambda app: None
           ) -> Iterator[HmaClient]:
    app = create_app(settings, db=db)
    setup(app)
    with serve(app) as base:
        client = HmaClient(base, token)
        yield client
        client.close()


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1",
                                     "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::",
                                     "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"])
def test_internal_addresses_are_refused(address: str) -> None:
    assert internal_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not(address: str) -> None:
    assert not internal_address(ipaddress.ip_address(address))


def test_without_an_allow_list_nothing_is_fetched(settings: Settings, db: Database, make_token: Callable[[Role], str],
                                                  media: tuple[MediaHost, str]) -> None:
    server, base = media
    for client in _serve(settings, db, make_token(Role.ADMIN)):
        assert client.create_bank("FETCHED").status_code == 201
        for r in (client.hash_url(f"{base}/photo.jpg"), client.lookup_url(f"{base}/photo.jpg"),
                  client.add_content_url("FETCHED", f"{base}/photo.jpg")):
            assert r.status_code == 400 and "BASTION_HMA_FETCH_HOSTS" in r.json()["message"]
    assert server.requests == []


def test_an_allow_listed_host_that_resolves_inward_is_refused(settings: Settings, db: Database,
                                                              make_token: Callable[[Role], str],
                                                              media: tuple[MediaHost, str]) -> None:
    """The real resolver and the real rule: ``localhost`` and ``127.0.0.1`` on the list change nothing."""
    server, base = media
    port = base.rsplit(":", 1)[1]
    listed = replace(settings, hma_fetch_hosts=("localhost", "127.0.0.1", "media.example"))
    for client in _serve(listed, db, make_token(Role.PLATFORM)):
        for url in (f"http://localhost:{port}/photo.jpg", f"http://127.0.0.1:{port}/photo.jpg"):
            r = client.hash_url(url)
            assert r.status_code == 400 and "internal address" in r.json()["message"], r.text
        assert "not on this server's allow-list" in client.hash_url("http://10.0.0.1/x.jpg").json()["message"]
        assert "http or https" in client.hash_url("file:///etc/passwd").json()["message"]
    assert server.requests == []


def _pointing(host: str, address: str) -> Callable[[FastAPI], None]:
    """Point an allow-listed name at the loopback fake (the one thing a test must relax: it has no public host)."""

    def setup(app: FastAPI) -> None:
        def resolver(name: str, port: int) -> list[IPAddress]:
            assert name == host
            return [ipaddress.ip_address(address)]

        app.state.hma_fetcher = UrlFetcher((host,), max_bytes=2 * 1024 * 1024, resolver=resolver,
                                           refuse=lambda a: False)

    return setup


def test_fetch_hash_bank_and_look_up_by_url(settings: Settings, db: Database, make_token: Callable[[Role], str],
                                            media: tuple[MediaHost, str], photo: Path) -> None:
    server, base = media
    port = base.rsplit(":", 1)[1]
    url = f"http://media.example:{port}/photo.jpg"
    pdq = next(s.value for s in hash_path(photo).signals if s.signal_type == "pdq")
    for client in _serve(settings, db, make_token(Role.ADMIN), _pointing("media.example", "127.0.0.1")):
        assert client.hash_url(url).json() == {"pdq": pdq}
        assert server.requests[-1] == ("/photo.jpg", f"media.example:{port}")  # the checked address, the name's Host
        assert client.create_bank("FETCHED").status_code == 201
        banked = client.add_content_url("FETCHED", url, metadata={"content_uri": url, "json": {"case": 7}})
        assert banked.status_code == 200, banked.text
        content = client.content("FETCHED", banked.json()["id"]).json()
        assert content["original_media_uri"] == url
        assert client.lookup_url(url).json() == {
            "pdq": {"FETCHED": [{"bank_content_id": banked.json()["id"], "distance": "0"}]}}
        assert client.lookup_url(url, signal_type="pdq").json() == {
            "FETCHED": [{"bank_content_id": banked.json()["id"], "distance": "0"}]}
        blob = client.hash_url(f"http://media.example:{port}/blob")
        assert blob.status_code == 400 and "content_type query param" in blob.json()["message"]
        assert client.hash_url(f"http://media.example:{port}/blob", content_type="photo").json() == {"pdq": pdq}
        assert "Invalid metadata" in client.add_content_url("FETCHED", url, metadata={"extra": 1}).json()["message"]
        moved = client.hash_url(f"http://media.example:{port}/moved")
        assert moved.status_code == 400 and "redirects are not followed" in moved.json()["message"]
        assert "answered 404" in client.hash_url(f"http://media.example:{port}/gone.jpg").json()["message"]
    assert ("/photo.jpg", f"media.example:{port}") in server.requests
    assert server.requests.count(("/moved", f"media.example:{port}")) == 1
