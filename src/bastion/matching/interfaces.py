"""The matching domain's errors: each carries a message a curator can act on."""

from __future__ import annotations


class BankError(Exception):
    """Base of the domain's errors; ``status`` is the HTTP status the API answers with."""

    status = 400


class BankNotFound(BankError):
    status = 404


class EntryNotFound(BankError):
    status = 404


class BankExists(BankError):
    status = 409


class DuplicateEntry(BankError):
    status = 409


class InvalidBank(BankError):
    status = 422


class InvalidEntry(BankError):
    status = 422


class RestrictedBank(BankError):
    """The bank holds child-abuse hashes and the caller's role may not touch it."""

    status = 403


class CsvImportError(BankError):
    """A bad line in an import file; the whole import was rolled back."""

    status = 422

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason
