"""Shared set-up: a bank, an exchange configured against a fake on loopback, the environment with its credentials."""

from __future__ import annotations

from tests.factories.exchanges import ncmec_hashes, threatexchange  # noqa: F401 - shared fixtures
