"""What a deployment lacks for production: named at start-up in the log, and by name only on /status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.core.production import Service, gaps
from bastion.core.sealing import new_key
from bastion.orders.wire import SigningKey
from bastion.web.app import create_app


def _production(settings: Settings) -> Settings:
    """Every setting a platform needs in production, set."""
    return replace(settings, orders_contact_email="tco@video.example",
                   orders_contact_point_url="https://tco.video.example", orders_signing_key=SigningKey.generate()
                   .to_text(), platform_webhook_url="https://video.example/hooks", webhook_secret=b"s3cret",
                   media_key=new_key(), reports_reporter_email="child-safety@video.example", secure_cookies=True,
                   transparency_db_url="https://transparency.example", transparency_db_token="t0ken")


def _names(settings: Settings, service: Service = Service.PLATFORM) -> list[str]:
    return [gap.setting for gap in gaps(settings, service)]


def test_a_default_platform_is_told_every_setting_production_needs(tmp_path: Path) -> None:
    assert _names(Settings(media_key_file=tmp_path / "k")) == [
        "BASTION_ORDERS_CONTACT_EMAIL", "BASTION_ORDERS_CONTACT_POINT_URL", "BASTION_ORDERS_SIGNING_KEY",
        "BASTION_PLATFORM_WEBHOOK_URL", "BASTION_WEBHOOK_SECRET", "BASTION_MEDIA_KEY", "BASTION_REPORTS_EMAIL",
        "BASTION_TRANSPARENCY_DB_URL", "BASTION_SECURE_COOKIES"]
    email = next(g for g in gaps(Settings(), Service.PLATFORM) if g.setting == "BASTION_ORDERS_CONTACT_EMAIL")
    assert "contact-point@example.invalid" in email.effect  # what the authority would otherwise read


def test_a_configured_platform_has_no_gap_until_reporting_is_half_configured(settings: Settings,
                                                                            tmp_path: Path) -> None:
    ready = _production(settings)
    assert _names(ready) == []
    assert _names(replace(ready, ncmec_username="video-ltd")) == ["BASTION_NCMEC_PASSWORD", "BASTION_NCMEC_XSD"]
    missing_xsd = replace(ready, ncmec_username="u", ncmec_password="p", ncmec_xsd=tmp_path / "none.xsd")
    [gap] = gaps(missing_xsd, Service.PLATFORM)
    assert gap.setting == "BASTION_NCMEC_XSD" and "none.xsd is not a file" in gap.effect
    assert _names(replace(ready, eu_centre_url="https://centre.example/v1/centre/reports")) == [
        "BASTION_EU_CENTRE_TOKEN"]
    assert _names(replace(ready, transparency_db_token="")) == ["BASTION_TRANSPARENCY_DB_TOKEN"]


def test_the_hub_and_the_centre_are_checked_for_their_own_settings(settings: Settings) -> None:
    assert _names(settings, Service.HUB) == ["BASTION_SECURE_COOKIES"]
    assert _names(settings, Service.CENTRE) == []  # it has no console; it refuses to start without forwarding


def test_the_platform_says_what_is_missing_at_start_and_on_status(
        settings: Settings, db: Database, caplog: pytest.LogCaptureFixture,
        auth_header: Callable[[Role], dict[str, str]]) -> None:
    admin = auth_header(Role.ADMIN)
    with caplog.at_level(logging.WARNING, logger="bastion"), TestClient(create_app(settings, db=db)) as client:
        status = client.get("/status", headers=admin).json()
        assert client.get("/status").json() == {"status": "ok"}  # the names are for admins only
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("bastion.")]
    assert any("BASTION_ORDERS_CONTACT_EMAIL" in line and "contact-point@example.invalid" in line for line in logged)
    assert "BASTION_ORDERS_CONTACT_EMAIL" in status["missing_settings"]
    assert "example.invalid" not in str(status)  # names only: what each gap weakens is for the operator's log
    with TestClient(create_app(_production(settings), db=db)) as client:
        assert client.get("/status", headers=admin).json()["missing_settings"] == []
