"""The plug-in contract (``bastion.testing.SignalTypeContract``), run on every built-in signal type: an extension's
type gets the same checks by subclassing it in its own tests (tests/test_extensions.py does so from outside)."""

from __future__ import annotations

from bastion.hashing import registry
from bastion.hashing.exact import Md5Signal, Sha256Signal
from bastion.hashing.pdq import PdqSignal
from bastion.hashing.text import TextSignal
from bastion.hashing.url import UrlSignal
from bastion.hashing.video_pdq import VideoPdqSignal
from bastion.testing import SignalTypeContract


class TestPdq(SignalTypeContract):
    signal_type = PdqSignal


class TestVideoPdq(SignalTypeContract):
    signal_type = VideoPdqSignal


class TestMd5(SignalTypeContract):
    signal_type = Md5Signal


class TestSha256(SignalTypeContract):
    signal_type = Sha256Signal


class TestText(SignalTypeContract):
    signal_type = TextSignal


class TestUrl(SignalTypeContract):
    signal_type = UrlSignal


def test_every_built_in_type_is_checked_here() -> None:
    checked = {c.signal_type for c in SignalTypeContract.__subclasses__() if c.__module__ == __name__}
    assert checked == set(registry.BUILT_IN)
