"""Checks of values that come from outside and mean something in the world: country codes and content URLs.

One rule each, used wherever such a value is accepted (intake, orders, the policy file), so that a field cannot
hold ``ZZ`` as a country or ``javascript:alert(1)`` as the address of a post in one place and not another.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: ISO 3166-1 alpha-2: the officially assigned codes (249). User-assigned codes (``XK``, ``ZZ``...) are not
#: countries and are refused. Member States (``core/eu.py``) are a subset.
COUNTRIES = frozenset({
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
})
#: Content URLs longer than this are refused (the columns that keep them hold 2,000 to 4,000 characters).
MAX_URL_CHARS = 2000


def country_code(value: str) -> str:
    """``value`` if it is an assigned ISO 3166-1 alpha-2 code in capitals; ``ValueError`` saying why if not."""
    if value not in COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 code (two capital letters, e.g. DE)")
    return value


def http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL with a host; ``ValueError`` saying why if not.

    Content URLs are shown in the console as links and sent on to authorities: a ``javascript:``, ``data:`` or
    ``file:`` address there is an attack or a mistake, never content on the web.
    """
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"a URL may have at most {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("a URL may not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise ValueError(f"{value[:100]!r} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError("must be an absolute http(s) URL with a host (e.g. https://example.com/post/1)")
    return value
