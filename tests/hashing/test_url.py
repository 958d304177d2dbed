"""URL canonicalisation, refusals with reasons, and URLs found in text."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.hashing import services
from bastion.hashing.interfaces import HashResult, InvalidSignalValue
from bastion.hashing.url import TRACKING_PARAMETERS, UrlSignal, canonical_url, find_urls


@pytest.mark.parametrize(("raw", "canonical"), [
    ("https://example.com", "https://example.com/"),
    ("HTTPS://Example.COM/Path", "https://example.com/Path"),  # path case is kept
    ("example.com/a", "http://example.com/a"),  # no scheme: http
    ("//cdn.example.com/lib.js", "http://cdn.example.com/lib.js"),
    ("www.example.com", "http://www.example.com/"),  # www. is kept: another host
    ("http://example.com:80/", "http://example.com/"),
    ("https://example.com:443/", "https://example.com/"),
    ("https://example.com:8443/", "https://example.com:8443/"),
    ("http://example.com:0080/", "http://example.com/"),
    ("https://example.com./x", "https://example.com/x"),  # trailing dot
    ("https://example.com/x#section-2", "https://example.com/x"),
    ("https://user:secret@example.com/", "https://example.com/"),
    ("https://bücher.example/", "https://xn--bcher-kva.example/"),
    ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
    ("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"),
    ("http://[2001:DB8:0:0::1]:8080/a", "http://[2001:db8::1]:8080/a"),
    ("http://10.0.0.1", "http://10.0.0.1/"),
    ("https://my_site.example.com/", "https://my_site.example.com/"),
    ("https://example.com/%7euser/%2fraw/%e2%82%ac", "https://example.com/~user/%2Fraw/%E2%82%AC"),
    ("https://example.com/a b/€", "https://example.com/a%20b/%E2%82%AC"),
    ("https://example.com/100%", "https://example.com/100%25"),
    ("https://example.com/a/./b/../c/", "https://example.com/a/c/"),
    ("https://example.com/a/b/..", "https://example.com/a/"),
    ("https://example.com/%2E%2E/x", "https://example.com/x"),
    ("https://example.com/a//b", "https://example.com/a//b"),
    ("https://example.com/?", "https://example.com/"),
    ("https://example.com/?b=2&a=1&&a=0", "https://example.com/?a=0&a=1&b=2"),
    ("https://example.com/?q=a+b&empty=&flag", "https://example.com/?empty=&flag&q=a+b"),
    ("https://example.com/?x=%41%2b", "https://example.com/?x=A%2B"),
    ("https://example.com/watch?v=abc&utm_source=x&UTM_Campaign=y&fbclid=1&gclid=2&si=3",
     "https://example.com/watch?v=abc"),
    ("https://example.com/p?igshid=1&mc_cid=2&mc_eid=3&ref_src=twsrc&msclkid=4", "https://example.com/p"),
])
def test_canonical_form(raw: str, canonical: str) -> None:
    assert canonical_url(raw) == canonical
    assert canonical_url(canonical) == canonical  # idempotent: a canonical value validates to itself


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty"),
    ("mailto:someone@example.com", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("ftp://example.com/file", "only http and https"),
    ("http://localhost/", "no dot"),
    ("http:///path", "needs a host"),
    ("http://exa mple.com/", "not a valid domain name"),
    ("http://-bad-.example/", "not a valid domain name"),
    ("http://example..com/", "not a valid domain name"),
    ("http://" + "a" * 64 + ".example/", "not a valid domain name"),
    ("http://example.com:99999/", "port"),
    ("http://example.com:http/", "port"),
    ("http://[::1/", "IPv6"),
    ("http://[not-an-ip]/", "IPv6"),
    ("http://999.1.1.1/", "IPv4"),
    ("http://example.com/\x00", "control characters"),
    ("https://example.com/" + "a" * 9000, "at most"),
])
def test_invalid_urls_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidSignalValue, match=reason):
        UrlSignal.validate(raw)


@pytest.mark.parametrize("name", sorted(TRACKING_PARAMETERS))
def test_every_tracking_parameter_is_removed(name: str) -> None:
    for spelling in (name, name.upper()):
        assert canonical_url(f"https://example.com/p?{spelling}=1&keep=2") == "https://example.com/p?keep=2"
    assert canonical_url(f"https://example.com/p?{name}=abc") == "https://example.com/p"


@pytest.mark.parametrize("port", ["\u00b2", "\u0668\u0660", "\uff18\uff10", "\u0e58\u0e50", "0", "65536"])
def test_ports_are_ascii_numbers_from_1_to_65535(port: str) -> None:
    """``str.isdigit`` takes superscripts ("²": int() then fails) and other scripts' digits ("٨٠" is 80)."""
    with pytest.raises(InvalidSignalValue, match="port"):
        canonical_url(f"https://example.com:{port}/")


def test_urls_with_unicode_digit_ports_are_skipped_in_text(tmp_path: Path) -> None:
    text = "bad https://example.com:\u00b2/ and http://example.com:\u0668\u0660/x, good https://ok.example/"
    assert find_urls(text) == ["https://ok.example/"]
    assert [s.value for s in services.hash_text(text) if s.signal_type == "url"] == ["https://ok.example/"]
    path = tmp_path / "post.txt"
    path.write_text(text, encoding="utf-8")
    signals = services.hash_path(path).signals
    assert [s.value for s in signals if s.signal_type == "url"] == ["https://ok.example/"]


def test_urls_are_found_in_text() -> None:
    text = (
        "Read it here: https://Example.com/post?id=7&utm_source=tw. "
        "Mirror (https://en.wikipedia.org/wiki/Foo_(bar)) or www.Mirror.example/post!  "
        "Same again: https://example.com/post?id=7#top, and <http://a.example/x>. "
        "Not URLs: e.g. file.txt, 3.14, ftp://old.example/"
    )
    assert find_urls(text) == [
        "https://example.com/post?id=7",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
        "http://www.mirror.example/post",
        "https://www.mirror.example/post",  # a bare www. URL could be either scheme
        "http://a.example/x",
    ]
    assert UrlSignal.hash_text(text)[0] == HashResult("url", "https://example.com/post?id=7")
    assert UrlSignal.hash_text("no links here") == []


def test_malformed_urls_in_text_are_skipped() -> None:
    assert find_urls("broken http://exa_mple:99999/ but fine https://ok.example/") == ["https://ok.example/"]


def test_distance_is_exact() -> None:
    a, b = UrlSignal.examples()[:2]
    assert UrlSignal.distance(a, a) == 0 and UrlSignal.distance(a, b) == 1
