from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bastion.core.auth import services as auth
from bastion.core.auth.models import ApiToken
from bastion.core.auth.roles import Role, parse_role
from bastion.core.db import Database


def test_token_round_trip_and_storage_is_hashed(db: Database) -> None:
    token = auth.create_token(db, role=Role.CURATOR, name="ci", actor="test")
    principal = auth.authenticate_token(db, token)
    assert principal is not None and principal.role is Role.CURATOR and principal.name == "ci"
    secret = token.split("_", 2)[2]
    with db.read() as session:
        stored = session.scalars(select(ApiToken)).one()
    assert secret not in (stored.secret_sha256, stored.name)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
    lambda t: t.replace("bst_", "xyz_", 1),  # wrong prefix
    lambda t: "bst_999_" + t.split("_", 2)[2],  # unknown id
    lambda t: "bst_" + "9" * 25 + "_" + t.split("_", 2)[2],  # an id past 64 bits: refused, not a driver error
    lambda t: "bst_\u00b2_" + t.split("_", 2)[2],  # a superscript two is a digit to isdigit, not to int: refused
    lambda t: "garbage",
    lambda t: "",
])
def test_wrong_tokens_are_refused(db: Database, mangle: object) -> None:
    token = auth.create_token(db, role=Role.ADMIN, name="x", actor="test")
    assert callable(mangle)
    assert auth.authenticate_token(db, mangle(token)) is None


def test_revoked_token_is_refused(db: Database) -> None:
    token = auth.create_token(db, role=Role.ADMIN, name="x", actor="test")
    token_id = int(token.split("_")[1])
    assert auth.authenticate_token(db, token) is not None  # checked once, so cached
    assert auth.revoke_token(db, token_id, actor="test")
    assert auth.authenticate_token(db, token) is None
    assert not auth.revoke_token(db, token_id, actor="test")


def test_a_revocation_by_another_process_holds_once_the_cache_expires(db: Database,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process's revocation reaches this one's cached check within ``TOKEN_CACHE_SECONDS``."""
    token = auth.create_token(db, role=Role.PLATFORM, name="x", actor="test")
    now = [1000.0]
    monkeypatch.setattr(auth, "monotonic", lambda: now[0])
    assert auth.authenticate_token(db, token) is not None
    with db.write() as session:  # as another process would: the row, not this process's cache
        session.execute(update(ApiToken).where(ApiToken.id == int(token.split("_")[1]))
                        .values(revoked_at=dt.datetime.now(dt.UTC)))
    now[0] += auth.TOKEN_CACHE_SECONDS
    assert auth.authenticate_token(db, token) is None


def test_passwords_are_argon2_and_checked(db: Database) -> None:
    user = auth.create_user(db, username="mona", password="correct horse battery", role=Role.MODERATOR,
                            actor="test")
    assert user.password_hash.startswith("$argon2")
    assert auth.check_password(db, "mona", "correct horse battery") is not None
    assert auth.check_password(db, "mona", "wrong password here") is None
    assert auth.check_password(db, "nobody", "correct horse battery") is None


def test_short_password_and_duplicate_user_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="12 characters"):
        auth.create_user(db, username="a", password="short", role=Role.ANALYST, actor="test")
    auth.create_user(db, username="a", password="long enough pass", role=Role.ANALYST, actor="test")
    with pytest.raises(ValueError, match="exists"):
        auth.create_user(db, username="a", password="long enough pass", role=Role.ANALYST, actor="test")


def test_unknown_role_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown role 'janitor'"):
        parse_role("janitor")


def test_a_check_that_read_its_row_before_a_revocation_does_not_keep_it(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request reads the token's row; the revocation commits before that request caches it: the request is
    answered from what it read, but the next one reads the row again and is refused."""
    token = auth.create_token(db, role=Role.ANALYST, name="raced", actor="test")
    token_id = int(token.split("_")[1])
    plain_read = db.read

    @contextmanager
    def read_then_revoke() -> Iterator[Session]:
        with plain_read() as session:
            yield session
        monkeypatch.setattr(db, "read", plain_read)
        assert auth.revoke_token(db, token_id, actor="test")  # commits and empties the cache, after the read

    monkeypatch.setattr(db, "read", read_then_revoke)
    assert auth.authenticate_token(db, token) is not None  # read before the revocation
    assert auth.authenticate_token(db, token) is None


def test_a_token_revoked_in_this_process_is_refused_at_its_next_request(
        client: TestClient, db: Database, make_token: Callable[[Role], str]) -> None:
    """The check a request just cached does not outlive a revocation made in the same process."""
    token = make_token(Role.ANALYST)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/content/nothing-here", headers=headers).status_code == 404  # admitted, then not found
    assert auth.revoke_token(db, int(token.split("_")[1]), actor="test")
    refused = client.get("/v1/content/nothing-here", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
