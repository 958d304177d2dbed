"""The console over HTTP: sessions, CSRF, roles, restricted banks and the match page."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bastion.core.auth import roles
from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal, create_user
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing.services import hash_path
from bastion.matching import services
from bastion.web.app import create_app
from bastion.web.console import FLASH_COOKIE, LOGIN_CSRF_COOKIE, LOGIN_FAILED, SECURITY_HEADERS, SESSION_COOKIE
from tests.factories.console import PASSWORD, csrf_of
from tests.factories.media import make_image, make_video


def _user(db: Database, username: str, role: Role) -> None:
    create_user(db, username=username, password=PASSWORD, role=role, actor="test")




def _login(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    r: httpx.Response = client.post("/login", follow_redirects=False,
                                    data={"csrf_token": token, "username": username, "password": password})
    return r


def _logged_in(client: TestClient, db: Database, username: str, role: Role) -> str:
    """Log a new user of ``role`` in; returns the session's CSRF token."""
    _user(db, username, role)
    r = _login(client, username)
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/console/banks" if role in roles.READ_BANKS else "/console/match").text)


def _pdq(path: Path) -> str:
    return next(s.value for s in hash_path(path).signals if s.signal_type == "pdq")


def _bank(db: Database, actor: Principal, name: str, path: Path, *, restricted: bool = False,
          category: str = "terrorist_content") -> int:
    services.create_bank(db, name, actor=actor, restricted=restricted)
    new = services.NewEntry.parse("pdq", _pdq(path), category, "test")
    entry = services.add_entry(db, name, new, actor=actor)
    return entry.id


def _refresh(client: TestClient) -> None:
    client.app.state.matcher.refresh()  # type: ignore[attr-defined]


def _resized_copy(known: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.jpg"
    with Image.open(known) as img:
        img.resize((400, 300)).save(copy, quality=60)
    return copy


def _upload(client: TestClient, csrf: str, name: str, content: bytes) -> httpx.Response:
    r: httpx.Response = client.post("/console/match", data={"csrf_token": csrf},
                                    files={"file": (name, content)})
    return r


# --- login --------------------------------------------------------------------------------------------------


def test_login_sets_a_strict_httponly_session_cookie(client: TestClient, db: Database) -> None:
    _user(db, "carla", Role.CURATOR)
    r = _login(client, "carla")
    assert r.status_code == 303 and r.headers["location"] == "/console/banks"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    page = client.get("/console/banks")
    assert page.status_code == 200 and "carla" in page.text and "curator" in page.text


def test_secure_cookies_when_configured(db: Database, settings: Settings) -> None:
    app = create_app(replace(settings, secure_cookies=True), db=db, refresh=False)
    with TestClient(app, base_url="https://testserver") as c:
        _user(db, "carla", Role.CURATOR)
        r = _login(c, "carla")
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
        assert "Secure" in cookie


def test_secure_cookies_over_https_even_when_not_configured(db: Database, settings: Settings) -> None:
    app = create_app(replace(settings, secure_cookies=False), db=db, refresh=False)
    with TestClient(app, base_url="https://testserver") as c:
        form = c.get("/login")
        assert all("Secure" in h for h in form.headers.get_list("set-cookie"))  # the login CSRF cookie
        _user(db, "carla", Role.CURATOR)
        r = _login(c, "carla")
        cookies = r.headers.get_list("set-cookie")
        assert cookies and all("Secure" in h for h in cookies)


def test_failed_logins_say_the_same_whatever_was_wrong(client: TestClient, db: Database) -> None:
    _user(db, "carla", Role.CURATOR)
    wrong_password = _login(client, "carla", "not the password at all")
    unknown_user = _login(client, "nobody", PASSWORD)
    for r in (wrong_password, unknown_user):
        assert r.status_code == 401
        assert LOGIN_FAILED in r.text
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", wrong_password.text).replace("carla", "") == \
        strip.sub("", unknown_user.text).replace("nobody", "")
    assert client.get("/console/banks", follow_redirects=False).status_code == 303


def test_login_without_its_csrf_token_is_refused(client: TestClient, db: Database) -> None:
    _user(db, "carla", Role.CURATOR)
    client.get("/login")  # sets the pre-session cookie
    r = client.post("/login", data={"username": "carla", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/login", data={"csrf_token": "forged", "username": "carla", "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/console/banks", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(client: TestClient, db: Database) -> None:
    csrf = _logged_in(client, db, "carla", Role.CURATOR)
    assert client.post("/logout", follow_redirects=False).status_code == 403  # no CSRF token
    r = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/console/banks", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", ["/", "/console/banks", "/console/banks/ANY", "/console/match"])
def test_anonymous_visitors_are_sent_to_login(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


@pytest.mark.parametrize("role", list(Role))
def test_the_root_sends_each_role_to_a_page_it_may_open(client: TestClient, db: Database, role: Role) -> None:
    _user(db, "someone", role)
    login = _login(client, "someone")
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == login.headers["location"]
    home = client.get(r.headers["location"])
    if role in roles.READ_BANKS | roles.MATCH | roles.TRANSPARENCY_HOME:
        assert home.status_code == 200
    else:  # no console page for this role: the page says so
        assert home.status_code == 403 and "may not open this page" in home.text
    if role not in roles.READ_BANKS and role in roles.MATCH:
        assert r.headers["location"] == "/console/match"


def test_a_forged_cookie_is_no_session(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "forged")
    assert client.get("/console/banks", follow_redirects=False).headers["location"] == "/login"


# --- roles and CSRF -----------------------------------------------------------------------------------------


def test_roles_are_enforced(client: TestClient, db: Database) -> None:
    _logged_in(client, db, "pat", Role.PLATFORM)
    r = client.get("/console/banks")
    assert r.status_code == 403 and "platform" in r.text
    assert client.get("/console/match").status_code == 200


def test_analysts_may_read_banks_but_not_match_or_curate(client: TestClient, db: Database, admin: Principal,
                                                         tmp_path: Path) -> None:
    _bank(db, admin, "TERRORIST_CONTENT", make_image(tmp_path / "k.jpg", seed=3))
    csrf = _logged_in(client, db, "ana", Role.ANALYST)
    page = client.get("/console/banks")
    assert "TERRORIST_CONTENT" in page.text and "Disable" not in page.text
    assert client.get("/console/match").status_code == 403
    r = client.post("/console/banks/TERRORIST_CONTENT/enabled", data={"csrf_token": csrf, "enabled": "false"})
    assert r.status_code == 403
    with db.read() as session:
        assert services.get_bank(session, "TERRORIST_CONTENT").enabled


def test_a_curator_disables_and_enables_a_bank(client: TestClient, db: Database, admin: Principal,
                                               tmp_path: Path) -> None:
    _bank(db, admin, "TERRORIST_CONTENT", make_image(tmp_path / "k.jpg", seed=3))
    csrf = _logged_in(client, db, "carla", Role.CURATOR)
    r = client.post("/console/banks/TERRORIST_CONTENT/enabled", data={"csrf_token": csrf, "enabled": "false"})
    assert r.status_code == 200 and "Bank TERRORIST_CONTENT disabled." in r.text
    with db.read() as session:
        assert not services.get_bank(session, "TERRORIST_CONTENT").enabled
    live = {b.name: b for b in client.app.state.matcher.banks.values()}  # type: ignore[attr-defined]
    assert not live["TERRORIST_CONTENT"].enabled
    assert "Bank TERRORIST_CONTENT disabled." not in client.get("/console/banks").text  # shown once
    r = client.post("/console/banks/TERRORIST_CONTENT/enabled",
                    data={"csrf_token": csrf, "enabled": "true", "back": "bank"})
    assert str(r.url).endswith("/console/banks/TERRORIST_CONTENT") and "enabled." in r.text


def test_a_post_without_the_csrf_token_changes_nothing(client: TestClient, db: Database, admin: Principal,
                                                       tmp_path: Path) -> None:
    _bank(db, admin, "TERRORIST_CONTENT", make_image(tmp_path / "k.jpg", seed=3))
    _logged_in(client, db, "carla", Role.CURATOR)
    for data in ({"enabled": "false"}, {"enabled": "false", "csrf_token": "wrong"}):
        r = client.post("/console/banks/TERRORIST_CONTENT/enabled", data=data)
        assert r.status_code == 403
    with db.read() as session:
        assert services.get_bank(session, "TERRORIST_CONTENT").enabled


def test_a_curator_cannot_disable_a_restricted_bank(client: TestClient, db: Database, admin: Principal,
                                                    tmp_path: Path) -> None:
    _bank(db, admin, "CSAM_KNOWN", make_image(tmp_path / "k.jpg", seed=3), restricted=True)
    csrf = _logged_in(client, db, "carla", Role.CURATOR)
    page = client.get("/console/banks").text
    assert "CSAM_KNOWN" not in page and "Disable" not in page  # not even listed outside child safety
    r = client.post("/console/banks/CSAM_KNOWN/enabled", data={"csrf_token": csrf, "enabled": "false"})
    assert r.status_code == 200 and "no bank named &#39;CSAM_KNOWN&#39;" in r.text  # as for a bank never made
    missing = client.post("/console/banks/CSAM_NONE/enabled", data={"csrf_token": csrf, "enabled": "false"})
    assert "no bank named &#39;CSAM_NONE&#39;" in missing.text
    with db.read() as session:
        assert services.get_bank(session, "CSAM_KNOWN").enabled


# --- bank pages ---------------------------------------------------------------------------------------------


def test_banks_page_lists_sizes_and_settings(client: TestClient, db: Database, admin: Principal,
                                             tmp_path: Path) -> None:
    _bank(db, admin, "TERRORIST_CONTENT", make_image(tmp_path / "k.jpg", seed=3))
    services.update_bank(db, "TERRORIST_CONTENT", actor=admin, dihedral=True, thresholds={"pdq": 20})
    _logged_in(client, db, "mo", Role.MODERATOR)
    page = client.get("/console/banks").text
    row = page[page.index('data-bank="TERRORIST_CONTENT"'):]
    assert '<td class="num entries">1</td>' in row
    assert "pdq <b>1</b>" in row and "pdq ≤ 20" in row and "enabled" in row
    assert "Disable" not in page  # moderators do not curate


def test_a_moderator_cannot_see_restricted_entries(client: TestClient, db: Database, admin: Principal,
                                                   tmp_path: Path) -> None:
    known = make_image(tmp_path / "k.jpg", seed=3)
    _bank(db, admin, "CSAM_KNOWN", known, restricted=True, category="csam_a1")
    value = _pdq(known)
    _logged_in(client, db, "mo", Role.MODERATOR)
    page = client.get("/console/banks/CSAM_KNOWN")
    assert page.status_code == 404  # the same page as a bank that does not exist
    assert "There is no bank named CSAM_KNOWN." in page.text
    assert value[:12] not in page.text and "csam_a1" not in page.text


def test_child_safety_sees_restricted_entries(client: TestClient, db: Database, admin: Principal,
                                              tmp_path: Path) -> None:
    known = make_image(tmp_path / "k.jpg", seed=3)
    entry_id = _bank(db, admin, "CSAM_KNOWN", known, restricted=True, category="csam_a1")
    _logged_in(client, db, "cs", Role.CHILD_SAFETY)
    page = client.get("/console/banks/CSAM_KNOWN").text
    assert f'id="entry-{entry_id}"' in page and _pdq(known)[:24] in page and "csam_a1" in page
    assert _pdq(known) not in page  # values are truncated


def test_a_bank_page_counts_only_its_own_entries(client: TestClient, db: Database, admin: Principal,
                                                 tmp_path: Path) -> None:
    _bank(db, admin, "A_BANK", make_image(tmp_path / "a.jpg", seed=3))
    services.create_bank(db, "B_BANK", actor=admin)
    for seed in (4, 5):
        services.add_entry(db, "B_BANK", services.NewEntry.parse("pdq", _pdq(make_image(
            tmp_path / f"{seed}.jpg", seed=seed))), actor=admin)
    with db.read() as session:
        a, b = (services.get_bank(session, n) for n in ("A_BANK", "B_BANK"))
        (only_b,) = services.list_banks(session, bank_id=b.id)
        assert (only_b.bank.name, only_b.entries, only_b.by_signal_type) == ("B_BANK", 2, {"pdq": 2})
        assert [s.bank.name for s in services.list_banks(session, bank_id=a.id)] == ["A_BANK"]
        assert services.list_banks(session, bank_id=b.id + a.id + 1000) == []
    _logged_in(client, db, "mo", Role.MODERATOR)
    assert '<dd class="entries">2</dd>' in client.get("/console/banks/B_BANK").text
    assert '<dd class="entries">1</dd>' in client.get("/console/banks/A_BANK").text


def test_unknown_bank_is_a_404_page(client: TestClient, db: Database) -> None:
    _logged_in(client, db, "mo", Role.MODERATOR)
    r = client.get("/console/banks/NOPE")
    assert r.status_code == 404 and "There is no bank named NOPE." in r.text


# --- matching -----------------------------------------------------------------------------------------------


def test_match_page_shows_the_match_and_a_blurred_thumbnail(client: TestClient, db: Database,
                                                             admin: Principal, tmp_path: Path) -> None:
    known = make_image(tmp_path / "known.jpg", seed=11, size=(800, 600))
    entry_id = _bank(db, admin, "TERRORIST_CONTENT", known)
    _refresh(client)
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    r = _upload(client, csrf, "copy.jpg", _resized_copy(known, tmp_path).read_bytes())
    assert r.status_code == 200, r.text
    html = r.text
    assert "1 match" in html and "TERRORIST_CONTENT" in html and f'<td class="num">{entry_id}</td>' in html
    assert "terrorist_content" in html and re.search(r'class="num distance">\d+<', html)
    assert "pdq" in html and "md5" in html and "sha256" in html
    img = re.search(r"<img [^>]*>", html)
    assert img is not None
    assert 'class="thumb blurred"' in img.group(0) and 'src="data:image/jpeg;base64,' in img.group(0)
    width, height = (int(v) for v in re.findall(r'(?:width|height)="(\d+)"', img.group(0)))
    assert max(width, height) <= 256
    assert "Click to reveal" in html and "data-reveal" in html


def test_no_match_is_said_plainly(client: TestClient, db: Database, tmp_path: Path) -> None:
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    r = _upload(client, csrf, "x.png", make_image(tmp_path / "x.png", seed=5, fmt="PNG").read_bytes())
    assert r.status_code == 200 and "no match" in r.text and "class=\"thumb blurred\"" in r.text


def test_a_restricted_match_sends_no_image(client: TestClient, db: Database, admin: Principal,
                                           tmp_path: Path) -> None:
    known = make_image(tmp_path / "known.jpg", seed=11, size=(800, 600))
    _bank(db, admin, "CSAM_KNOWN", known, restricted=True, category="csam")
    _refresh(client)
    for name, role in (("cs", Role.CHILD_SAFETY), ("mo", Role.MODERATOR)):
        client.cookies.clear()
        csrf = _logged_in(client, db, name, role)
        r = _upload(client, csrf, "copy.jpg", _resized_copy(known, tmp_path).read_bytes())
        # child safety sees the match; a moderator sees no match and no reason why there is no preview
        assert r.status_code == 200 and ("CSAM_KNOWN" in r.text) is (role is Role.CHILD_SAFETY)
        assert ("Preview withheld" in r.text) is (role is Role.CHILD_SAFETY)
        assert "data:image" not in r.text and "<img" not in r.text and "data-reveal" not in r.text


@pytest.mark.parametrize(("role", "sees_category"), [
    (Role.MODERATOR, False), (Role.CURATOR, False), (Role.PLATFORM, False),
    (Role.CHILD_SAFETY, True), (Role.ADMIN, True),
])
def test_a_restricted_match_shows_its_category_to_child_safety_roles_only(
        client: TestClient, db: Database, admin: Principal, tmp_path: Path, role: Role, sees_category: bool) -> None:
    known = make_image(tmp_path / "known.jpg", seed=11, size=(800, 600))
    _bank(db, admin, "CSAM_KNOWN", known, restricted=True, category="csam_a1_secret")
    _bank(db, admin, "TERRORIST_CONTENT", known, category="terror_open")
    _refresh(client)
    csrf = _logged_in(client, db, "someone", role)
    r = _upload(client, csrf, "copy.jpg", _resized_copy(known, tmp_path).read_bytes())
    # outside child safety, the restricted match is not there at all (not its bank, not its category, not a count)
    assert r.status_code == 200 and ("CSAM_KNOWN" in r.text) is sees_category
    assert ("2 matches" if sees_category else "1 match") in r.text
    assert "terror_open" in r.text  # unrestricted banks' categories for everyone who may match
    assert ("csam_a1_secret" in r.text) is sees_category


def test_a_text_upload_matches_the_urls_in_it(client: TestClient, db: Database, admin: Principal) -> None:
    services.create_bank(db, "BAD_LINKS", actor=admin)
    entry = services.add_entry(db, "BAD_LINKS", services.NewEntry.parse("url", "https://evil.example/join",
                                                                         "recruitment"), actor=admin)
    _refresh(client)
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    text = "Come along: HTTPS://Evil.example/join?utm_source=chat#now and bring friends.\n"
    r = _upload(client, csrf, "post.txt", text.encode())
    assert r.status_code == 200, r.text
    html = r.text
    assert "1 match" in html and "BAD_LINKS" in html and f'<td class="num">{entry.id}</td>' in html
    assert "recruitment" in html and "The file is a text;" in html
    signal_types = re.findall(r"<tr><td>([a-z0-9_]+)</td><td><code", html)
    assert signal_types == ["md5", "sha256", "text", "url"]
    assert "No preview for this text." in html and "<img" not in html


def test_a_video_upload_matches_a_banked_video(client: TestClient, db: Database, admin: Principal,
                                               tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", seed=1, seconds=4, size=(160, 120))
    value = next(s.value for s in hash_path(video).signals if s.signal_type == "video_pdq")
    services.create_bank(db, "VIDEOS", actor=admin)
    services.add_entry(db, "VIDEOS", services.NewEntry.parse("video_pdq", value, "violent_video"), actor=admin)
    _refresh(client)
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    r = _upload(client, csrf, "clip.mp4", video.read_bytes())
    assert r.status_code == 200, r.text
    html = r.text
    assert "1 match" in html and "VIDEOS" in html and "violent_video" in html and "The file is a video;" in html
    assert re.search(r"<td>video_pdq</td>\s*<td class=\"num distance\">0<", html)
    assert "No preview for this video." in html and "<img" not in html


def test_unreadable_uploads_do_not_reveal_the_spool_directory(client: TestClient, db: Database,
                                                              settings: Settings) -> None:
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    for name, content in (("bad.jpg", b"\xff\xd8\xff\xe0 a truncated jpeg" * 10),
                          ("bad.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 4000)):
        r = _upload(client, csrf, name, content)
        assert r.status_code == 415 and "Unreadable media" in r.text
        assert str(settings.spool_dir) not in r.text and "bastion-upload-" not in r.text


@pytest.mark.parametrize(("content", "status", "message"), [
    (b"", 422, "Empty file"),
    (b"\x00\x01\x02 not media" * 10, 415, "Unsupported media type"),
    (b"\xff\xd8\xff\xe0 a truncated jpeg" * 10, 415, "Unreadable media"),
])
def test_bad_uploads_get_a_clear_message(client: TestClient, db: Database, content: bytes, status: int,
                                         message: str) -> None:
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    r = _upload(client, csrf, "bad.bin", content)
    assert r.status_code == status
    assert message in r.text and 'class="flash flash-error"' in r.text and "Traceback" not in r.text


def test_an_oversize_upload_gets_a_clear_message(client: TestClient, db: Database) -> None:
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    r = _upload(client, csrf, "big.jpg", b"\xff\xd8\xff" + b"\x00" * (2 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert "larger than the upload limit of 2 MiB" in r.text


def test_match_without_a_file_or_token(client: TestClient, db: Database) -> None:
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    r = client.post("/console/match", data={"csrf_token": csrf})
    assert r.status_code == 422 and "Choose a file" in r.text
    r = client.post("/console/match", files={"file": ("x.txt", b"hello")})
    assert r.status_code == 403


def test_more_than_one_file_is_refused_with_a_message(client: TestClient, db: Database) -> None:
    csrf = _logged_in(client, db, "mo", Role.MODERATOR)
    r = client.post("/console/match", data={"csrf_token": csrf},
                    files=[("file", ("a.txt", b"hello")), ("file", ("b.txt", b"world"))])
    assert r.status_code == 400 and "The upload could not be read" in r.text


def test_logging_in_again_ends_the_previous_session(client: TestClient, db: Database) -> None:
    _logged_in(client, db, "carla", Role.CURATOR)
    old = client.cookies[SESSION_COOKIE]
    form = TestClient(client.app).get("/login")  # a login form loaded elsewhere (this browser is logged in)
    client.cookies.set(LOGIN_CSRF_COOKIE, form.cookies[LOGIN_CSRF_COOKIE], path="/login")
    r = client.post("/login", follow_redirects=False,
                    data={"csrf_token": csrf_of(form.text), "username": "carla", "password": PASSWORD})
    assert r.status_code == 303
    assert client.cookies[SESSION_COOKIE] != old
    stale = TestClient(client.app)
    stale.cookies.set(SESSION_COOKIE, old)
    assert stale.get("/console/banks", follow_redirects=False).headers["location"] == "/login"


# --- escaping and flash messages ----------------------------------------------------------------------------

SCRIPT = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"


def _flash_cookie(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def test_bank_descriptions_are_escaped(client: TestClient, db: Database, admin: Principal) -> None:
    services.create_bank(db, "XSS_BANK", actor=admin, description=f"Known {SCRIPT} posts & <b>more</b>")
    _logged_in(client, db, "mo", Role.MODERATOR)
    for path in ("/console/banks", "/console/banks/XSS_BANK"):
        html = client.get(path).text
        assert ESCAPED in html and "&amp; &lt;b&gt;more&lt;/b&gt;" in html
        assert "<script>alert" not in html and "<b>more" not in html


def test_flash_text_is_escaped(client: TestClient, db: Database) -> None:
    _logged_in(client, db, "mo", Role.MODERATOR)
    client.cookies.set(FLASH_COOKIE, _flash_cookie({"kind": "error", "text": SCRIPT}), path="/console")
    html = client.get("/console/banks").text
    assert f'<div class="flash flash-error" role="alert">{ESCAPED}</div>' in html and "<script>alert" not in html


@pytest.mark.parametrize("cookie", [
    "not base64 at all!",
    base64.urlsafe_b64encode(b"{not json").decode(),
    _flash_cookie(["ok", "a list"]),
    _flash_cookie({"kind": "info", "text": "an unknown kind"}),
    _flash_cookie({"kind": '" onmouseover="alert(1)', "text": "a kind that would be an attribute"}),
    _flash_cookie({"kind": "ok", "text": ["not", "a", "string"]}),
    _flash_cookie({"kind": "ok"}),
])
def test_a_tampered_flash_cookie_is_ignored(client: TestClient, db: Database, cookie: str) -> None:
    _logged_in(client, db, "mo", Role.MODERATOR)
    client.cookies.set(FLASH_COOKIE, cookie, path="/console")
    r = client.get("/console/banks")
    assert r.status_code == 200 and 'class="flash' not in r.text and "onmouseover" not in r.text


# --- headers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/console/banks", "/console/match", "/console/banks/NOPE"])
def test_security_headers(client: TestClient, db: Database, path: str) -> None:
    _logged_in(client, db, "mo", Role.MODERATOR)
    r = client.get(path) if path != "/login" else TestClient(client.app).get(path)
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "<script>" not in r.text and "style=" not in r.text  # everything comes from /static


def test_static_assets_are_served(client: TestClient) -> None:
    assert "blur(24px) grayscale(1)" in client.get("/static/console.css").text
    assert "data-reveal" in client.get("/static/console.js").text
