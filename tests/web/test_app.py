from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.config import Settings

Header = Callable[[Role], dict[str, str]]


def test_status_reports_liveness_and_freshness_to_admins(client: TestClient, auth_header: Header) -> None:
    body = client.get("/status", headers=auth_header(Role.ADMIN)).json()
    assert body["database"] == "ok"
    assert body["index"]["changes_behind"] == 0
    assert body["status"] == "ok"


@pytest.mark.parametrize("role", [None, Role.PLATFORM, Role.ANALYST, Role.CHILD_SAFETY])
def test_status_tells_anyone_else_the_overall_health_only(client: TestClient, auth_header: Header,
                                                          role: Role | None) -> None:
    """A health check needs no token; what the server lacks for production, its version, its index and its backlog
    are for its operators (a missing setting names a weakness to whoever can reach the port)."""
    answer = client.get("/status", headers=auth_header(role) if role else {})
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    wrong = client.get("/status", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 200 and wrong.json() == {"status": "ok"}


def test_metrics_need_a_token_and_count_requests(client: TestClient, auth_header: Header) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth_header(Role.PLATFORM)).status_code == 403
    client.get("/v1/banks", headers=auth_header(Role.ANALYST))
    text = client.get("/metrics", headers=auth_header(Role.ANALYST)).text
    assert 'bastion_http_requests_total{method="GET",route="/v1/banks",status="200"}' in text
    assert 'bastion_index_entries{signal_type="pdq"}' in text


def test_openapi_lists_the_v1_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/hash", "/v1/match", "/v1/banks", "/v1/banks/{name}/entries",
            "/v1/banks/{name}/entries/{entry_id}", "/v1/banks/{name}/export"} <= set(paths)


def test_hash_gives_a_text_file_its_text_and_url_signals(client: TestClient, auth_header: Header) -> None:
    text = "Join us at https://Evil.example/meet?fbclid=1 this Saturday.\n"
    r = client.post("/v1/hash", files={"file": ("post.txt", text.encode(), "text/plain")},
                    headers=auth_header(Role.MODERATOR))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "text"
    assert [s["signal_type"] for s in body["signals"]] == ["md5", "sha256", "text", "url"]
    assert body["signals"][-1]["value"] == "https://evil.example/meet"


def test_hash_survives_unicode_digits_in_a_port(client: TestClient, auth_header: Header) -> None:
    text = "odd https://example.com:\u00b2/ and https://example.com:\u0668\u0660/ but https://ok.example/\n"
    r = client.post("/v1/hash", files={"file": ("post.txt", text.encode(), "text/plain")},
                    headers=auth_header(Role.MODERATOR))
    assert r.status_code == 200, r.text
    assert [s["value"] for s in r.json()["signals"] if s["signal_type"] == "url"] == ["https://ok.example/"]


def test_unreadable_media_problems_do_not_reveal_server_paths(client: TestClient, auth_header: Header,
                                                              settings: Settings) -> None:
    for name, content in (("bad.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8),
                          ("bad.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 4000)):
        r = client.post("/v1/hash", files={"file": (name, content)}, headers=auth_header(Role.MODERATOR))
        assert r.status_code == 415, r.text
        detail = r.json()["detail"]
        assert detail.startswith("the ") and "could not be decoded: not a readable" in detail
        assert str(settings.spool_dir) not in detail and "bastion-upload-" not in detail and "/" not in detail
