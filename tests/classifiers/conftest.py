"""Fixtures of the classifier tests."""

from tests.factories.model_host import host  # noqa: F401 - a shared fixture
