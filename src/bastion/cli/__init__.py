"""The ``bastion`` command, one module per domain. Errors are one line on stderr with a non-zero exit; long work
shows a progress bar."""

from bastion.cli import (  # noqa: F401 - they register commands
    accounts,
    banks,
    classifiers,
    crises,
    exchanges,
    factchecks,
    feed,
    minors,
    orders,
    reports,
    statements,
    system,
    transparency,
)
from bastion.cli.app import app
from bastion.cli.banks import _print_summary, load_matcher

__all__ = ["_print_summary", "app", "load_matcher"]
