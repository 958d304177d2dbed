"""Contract tests for plug-ins, shipped with Bastion so that an extension's own tests run the same checks as the
built-in signal types and classifiers: subclass the base class, say what to check, and pytest does the rest::

    from bastion.testing import SignalTypeContract

    class TestCrc32(SignalTypeContract):
        signal_type = Crc32Signal
        extensions = ("acme_hashes",)   # the module(s) of BASTION_EXTENSIONS that declare it

Only the test run needs pytest (Bastion's ``test`` extra); importing this package does not.
"""

from bastion.testing.classifiers import ClassifierContract
from bastion.testing.extensions import using_extensions
from bastion.testing.signal_types import SignalTypeContract

__all__ = ["ClassifierContract", "SignalTypeContract", "using_extensions"]
