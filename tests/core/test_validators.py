"""Country codes and content URLs: one rule each, from core, wherever such a value comes in."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.core.eu import MEMBER_STATES
from bastion.core.validators import COUNTRIES, country_code, http_url

ZONE_TAB = Path("/usr/share/zoneinfo/iso3166.tab")


def test_the_country_list_is_iso_3166_1_and_holds_every_member_state() -> None:
    assert len(COUNTRIES) == 249 and MEMBER_STATES <= COUNTRIES
    if ZONE_TAB.exists():  # the system's copy of the standard (tzdata), where there is one
        listed = {line.split("\t")[0] for line in ZONE_TAB.read_text().splitlines() if line[:1].isalpha()}
        assert listed == COUNTRIES


@pytest.mark.parametrize("code", ["ZZ", "XX", "XK", "EU", "EL", "UK", "de", "D", "DEU", ""])
def test_codes_that_are_not_assigned_countries_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO 3166-1 alpha-2 code"):
        country_code(code)


@pytest.mark.parametrize("url", ["https://example.com/post/1", "http://127.0.0.1:8080/x?y=1#z",
                                 "HTTPS://Example.COM", "https://[2001:db8::1]/v"])
def test_web_urls_are_accepted_as_given(url: str) -> None:
    assert http_url(url) == url


@pytest.mark.parametrize(("url", "reason"), [
    ("javascript:alert(1)", r"absolute http\(s\) URL"),
    ("file:///etc/passwd", r"absolute http\(s\) URL"),
    ("data:text/html,<script>x</script>", r"absolute http\(s\) URL"),
    ("ftp://example.com/f", r"absolute http\(s\) URL"),
    ("https:///no-host", "with a host"),
    ("example.com/post", r"absolute http\(s\) URL"),
    ("https://example.com/a b", "spaces or control characters"),
    ("https://example.com/\x00", "spaces or control characters"),
    ("https://example.com:99999/", "not a valid URL"),
    ("https://[::1/", "not a valid URL"),
    ("https://example.com/" + "a" * 2000, "at most 2000 characters"),
])
def test_anything_but_a_web_url_with_a_host_is_refused(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        http_url(url)
