"""/docs on the platform, the hub and the Centre: served from the package (no CDN), with the security headers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bastion.centre.app import create_centre_app
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.http import SECURITY_HEADERS
from bastion.hub.app import create_hub_app
from bastion.web.app import create_app
from bastion.web.hub_pages import with_console

APPS: dict[str, Callable[[Settings, Database], FastAPI]] = {
    "platform": lambda s, db: create_app(s, db=db, refresh=False, classifiers=()),
    "hub": lambda s, db: with_console(create_hub_app(s, db=db, deliver=False)),
    "centre": lambda s, db: create_centre_app(replace(s, centre_forward="EUROPOL=http://127.0.0.1:9"), db=db,
                                              deliver=False),
}
#: Addresses on the docs page: scripts, stylesheets, the icon and the OpenAPI document.
REFERENCE = re.compile(r'(?:src|href|data-openapi)="([^"]*)"')


@pytest.fixture(params=list(APPS))
def client(request: pytest.FixtureRequest, settings: Settings, db: Database) -> Iterator[TestClient]:
    with TestClient(APPS[request.param](settings, db)) as c:
        yield c


def _assert_security_headers(headers: object) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name  # type: ignore[index]


def test_docs_name_no_other_host_and_every_file_they_name_is_served(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    _assert_security_headers(page.headers)
    assert "cdn" not in page.text.lower() and "//" not in page.text.replace("://", "")  # no scheme-relative host
    references = REFERENCE.findall(page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/start.js",
            "/openapi.json"} <= set(references)
    for reference in references:
        assert not urlsplit(reference).netloc and reference.startswith("/"), reference
        served = client.get(reference)
        assert served.status_code == 200 and served.content, reference
        _assert_security_headers(served.headers)
    assert "<script>" not in page.text  # no inline script: the CSP (script-src 'self') holds on this page too


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/status", "/openapi.json", "/no-such-page", "/v1/nothing-here"):
        _assert_security_headers(client.get(path).headers)


@pytest.mark.parametrize(("model", "fields"), [
    ("RatingOut", ["answer"]),
    ("ChangeOut", ["preview", "result"]),
    ("RunAnswer", ["settings", "results"]),
])
def test_answers_outside_clients_read_have_schemas_not_bare_objects(settings: Settings, db: Database, model: str,
                                                                    fields: list[str]) -> None:
    """A client generated from the OpenAPI gets a type for these fields (they were ``dict[str, Any]``)."""
    schemas = APPS["platform"](settings, db).openapi()["components"]["schemas"]

    def typed(schema: dict[str, object]) -> bool:
        options = schema.get("anyOf", [schema])
        assert isinstance(options, list)
        return all("$ref" in option for option in options)

    for name in fields:
        assert typed(schemas[model]["properties"][name]), (model, name, schemas[model]["properties"][name])
