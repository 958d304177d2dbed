"""One error model. Every domain error subclasses ``DomainError``, which carries its HTTP status and title; one
handler turns it into problem+json for the API (``core/http.py``), one into an error page for the console
(``web/console.py: ConsoleRoute``) and one into a one-line message for the CLI (``cli/common.py``). A router never
catches its own domain's errors."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on: the message says what to fix, ``status`` and ``title`` how to answer it.

    Don't put restricted material (a restricted bank's name, a rule, a distance) in the message: every handler shows
    it to the caller as it is.
    """

    status: int = 400
    title: str = "Bad request"

    def problem_extra(self) -> dict[str, Any]:
        """Further members of the problem+json answer (e.g. a refusal's machine-readable ``reason``)."""
        return {}
