from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role

Header = Callable[[Role], dict[str, str]]


def test_status_reports_liveness_and_freshness(client: TestClient) -> None:
    body = client.get("/status").json()
    assert body["database"] == "ok"
    assert body["index"]["changes_behind"] == 0
    assert body["status"] == "ok"


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
