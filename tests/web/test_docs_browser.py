"""/docs in a real browser, offline: Swagger UI renders the platform's operations from the package's files."""

from __future__ import annotations

from urllib.parse import urlsplit

from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.web.app import create_app
from tests.factories.live import browser, needs_chromium, serve

pytestmark = needs_chromium


def test_swagger_ui_renders_the_operations_offline(settings: Settings, db: Database) -> None:
    """In chromium, with every request to another host refused: the page must still list the API's operations,
    with no error in the console (a Content-Security-Policy violation would be one)."""
    outside: list[str] = []
    problems: list[str] = []
    with serve(create_app(settings, db=db, classifiers=())) as base, browser() as chromium:
        context = chromium.new_context()

        def route(r: object) -> None:
            request = r.request  # type: ignore[attr-defined]
            if urlsplit(request.url).hostname != "127.0.0.1":
                outside.append(request.url)
                r.abort()  # type: ignore[attr-defined]
            else:
                r.continue_()  # type: ignore[attr-defined]

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        context.close()
    assert outside == []
    assert problems == []
    assert any("/v1/match" in p for p in paths) and len(paths) > 10
