"""The fake exchanges on loopback, shared by the tests of every exchange."""

from __future__ import annotations

from tests.factories.exchanges import ncmec_hashes, threatexchange  # noqa: F401 - shared fixtures
