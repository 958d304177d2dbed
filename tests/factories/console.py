"""Logging in to a console the way a browser does (login form, CSRF, session cookie), for HTTP-level tests."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.auth.services import create_user
from bastion.core.db import Database

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def login(client: TestClient, db: Database, username: str, role: Role | None = None, *,
          home: str | None = None) -> str:
    """Log ``username`` in (created first when ``role`` is given); returns the session's CSRF token.

    ``home``: where the console must send this user after login (checked), and the page the token is read from.
    """
    if role is not None:
        create_user(db, username=username, password=PASSWORD, role=role, actor="test")
    r = client.post("/login", data={"csrf_token": csrf_of(client.get("/login").text), "username": username,
                                    "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    landing = r.headers["location"]
    if home is not None:
        assert landing == home
    return csrf_of(client.get(landing).text)
