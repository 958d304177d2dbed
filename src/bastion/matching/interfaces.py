"""The matching domain's errors: each carries a message a curator can act on."""

from __future__ import annotations

from bastion.core.errors import DomainError


class BankError(DomainError):
    """Base of the domain's errors; ``status`` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"


class BankNotFound(BankError):
    status = 404
    title = "Bank not found"


class EntryNotFound(BankError):
    status = 404
    title = "Entry not found"


class BankExists(BankError):
    status = 409
    title = "Bank exists"


class DuplicateEntry(BankError):
    status = 409
    title = "Duplicate entry"


class InvalidBank(BankError):
    status = 422
    title = "Invalid bank"


class InvalidEntry(BankError):
    status = 422
    title = "Invalid entry"


class RestrictedBank(BankError):
    """The bank holds child-abuse hashes and the caller's role may not touch it."""

    status = 403
    title = "Restricted bank"


class CsvImportError(BankError):
    """A bad line in an import file; the whole import was rolled back."""

    status = 422
    title = "Invalid import file"

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason
