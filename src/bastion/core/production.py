"""What a deployment still lacks for production, said at start-up and on ``/status``.

Every setting has a default that lets Bastion start on a laptop; some of those defaults are wrong in production (an
Annex II answer signed ``contact-point@example.invalid``, moderation actions sent nowhere, a media key in a file
one replica made for itself). Each is named here once, with what happens without it, so an operator reads it on
the first start instead of from an authority's complaint.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from bastion.core.config import Settings

log = logging.getLogger(__name__)


class Service(enum.StrEnum):
    """Which of Bastion's servers is starting: each needs different settings."""

    PLATFORM = "platform"  # bastion serve
    HUB = "hub"  # bastion hub serve
    CENTRE = "centre"  # bastion centre serve


@dataclass(frozen=True)
class Gap:
    """A setting production needs and this deployment lacks: its environment variable and what happens meanwhile.

    ``effect`` goes to the log, never to ``/status`` (which anyone may read): it says what is weak."""

    setting: str
    effect: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.effect}"


def gaps(settings: Settings, service: Service) -> list[Gap]:
    """The settings ``service`` needs in production that ``settings`` leaves unset or at a placeholder."""
    found: list[Gap] = []
    if service is Service.PLATFORM:
        found += _platform(settings)
    # the Centre has no console, and refuses to start without its forwarding and its secret (bastion centre serve)
    if service is not Service.CENTRE and not settings.secure_cookies:
        found.append(Gap("BASTION_SECURE_COOKIES", "console cookies are marked Secure only on requests that reach "
                                                   "Bastion over HTTPS; behind a TLS proxy set it to 1"))
    return found


def _platform(s: Settings) -> list[Gap]:
    found: list[Gap] = []
    if s.orders_contact_email == Settings.orders_contact_email:
        found.append(Gap("BASTION_ORDERS_CONTACT_EMAIL",
                         f"Annex II/III answers to authorities are signed {s.orders_contact_email}"))
    if not s.orders_contact_point_url:
        found.append(Gap("BASTION_ORDERS_CONTACT_POINT_URL",
                         "removal orders are not checked against this contact point's URL (a signed order sent "
                         "to another provider could be replayed here)"))
    if not s.orders_signing_key:
        found.append(Gap("BASTION_ORDERS_SIGNING_KEY", "Annex II/III answers cannot be signed, so none is sent "
                                                        "(make a key with: bastion orders keygen)"))
    if not s.platform_webhook_url:
        found.append(Gap("BASTION_PLATFORM_WEBHOOK_URL", "moderation actions (removals, restrictions, notices) "
                                                          "are recorded but sent to no platform"))
    if not s.webhook_secret:
        found.append(Gap("BASTION_WEBHOOK_SECRET", "webhooks cannot be signed, so none is sent"))
    if not s.media_key:
        found.append(Gap("BASTION_MEDIA_KEY", f"previews and preserved material are sealed with the key file "
                                              f"{s.media_key_file} (made on first use); replicas need one shared key"))
    if s.reports_reporter_email == Settings.reports_reporter_email:
        found.append(Gap("BASTION_REPORTS_EMAIL", f"child-safety reports name {s.reports_reporter_email} as the "
                                                  "reporter"))
    found += _reporting(s)
    if not s.transparency_db_url:
        found.append(Gap("BASTION_TRANSPARENCY_DB_URL", "statements of reasons are kept but not submitted to the DSA "
                                                        "Transparency Database (Art. 24(5))"))
    elif not s.transparency_db_token:
        found.append(Gap("BASTION_TRANSPARENCY_DB_TOKEN", "no statement of reasons is submitted to the DSA "
                                                          "Transparency Database"))
    return found


def _reporting(s: Settings) -> list[Gap]:
    """NCMEC and the EU Centre, checked only once the operator has begun to configure one of them."""
    found: list[Gap] = []
    if s.ncmec_username or s.ncmec_password or s.ncmec_xsd:
        if not s.ncmec_username:
            found.append(Gap("BASTION_NCMEC_USERNAME", "no report is sent to NCMEC"))
        if not s.ncmec_password:
            found.append(Gap("BASTION_NCMEC_PASSWORD", "NCMEC refuses every report"))
        if s.ncmec_xsd is None or not s.ncmec_xsd.is_file():
            where = f" ({s.ncmec_xsd} is not a file)" if s.ncmec_xsd else ""
            found.append(Gap("BASTION_NCMEC_XSD", f"reports cannot be checked against NCMEC's schema, so none is "
                                                  f"sent{where}"))
    if s.eu_centre_url and not s.eu_centre_token:
        found.append(Gap("BASTION_EU_CENTRE_TOKEN", "no report is sent to the EU Centre"))
    if s.eu_centre_token and not s.eu_centre_url:
        found.append(Gap("BASTION_EU_CENTRE_URL", "no report is sent to the EU Centre"))
    return found


def warn(settings: Settings, service: Service) -> list[Gap]:
    """Log each gap once, as the server starts; returns them for ``/status``."""
    found = gaps(settings, service)
    for gap in found:
        log.warning("not set for production: %s", gap)
    return found
