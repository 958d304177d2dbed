"""The HMA domain's errors: HMA's own status codes, with its ``message`` member beside problem+json's."""

from __future__ import annotations

from typing import Any, Protocol

from bastion.core.auth.services import Principal
from bastion.core.errors import DomainError


class ExchangeDirectory(Protocol):
    """Bastion's exchanges as HMA's ``/c/exchanges`` shows them (wired by the app: ``exchanges/`` sits beside HMA,
    not below it). Restricted exchanges are left out for roles that may not see them."""

    def names(self, viewer: Principal) -> list[str]: ...

    def apis(self) -> list[str]: ...

    def describe(self, name: str, viewer: Principal) -> dict[str, Any] | None: ...


class HmaError(DomainError):
    """A refusal answered as HMA answers it: its status (400 for any bad input, 404 for an unknown bank or content,
    403 for a bank that exists) and ``{"message": ...}``, which HMA's clients read; problem+json members too."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = _TITLES.get(status, "Bad request")
        self.message = message

    def problem_extra(self) -> dict[str, Any]:
        return {"message": self.message}


class FetchRefused(HmaError):
    """A ``?url=`` that Bastion will not fetch: no allow-list, a host not on it, an internal address, a redirect."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 413: "Content too large",
           415: "Unsupported media type", 503: "Service unavailable"}
