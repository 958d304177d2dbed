"""The exchanges domain's errors, the kinds of exchange and the opinions Bastion can send back."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bastion.core.errors import DomainError


class ExchangeError(DomainError):
    status = 400
    title = "Bad request"


class ExchangeNotFound(ExchangeError):
    status = 404
    title = "Exchange not found"


class ExchangeExists(ExchangeError):
    status = 409
    title = "Exchange exists"


class InvalidExchange(ExchangeError):
    status = 422
    title = "Invalid exchange"


class ExchangeUnavailable(ExchangeError):
    """python-threatexchange (the ``exchanges`` extra) is not installed: nothing can be fetched or sent."""

    status = 503
    title = "Exchanges unavailable"


class FetchFailed(ExchangeError):
    """The exchange answered an error, or could not be reached. What was committed before it stays."""

    status = 502
    title = "Exchange fetch failed"

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        #: The exchange's own HTTP status, when it answered one.
        self.http_status = http_status


class FetchRaced(ExchangeError):
    """Another fetch of the same exchange moved its checkpoint: this one stops and leaves the work to it."""

    status = 409
    title = "Exchange fetch in progress"


class ExchangeKind(enum.StrEnum):
    """An exchange API. Values are storage keys (python-threatexchange's API names)."""

    THREATEXCHANGE = "fb_threatexchange"
    NCMEC = "ncmec"
    STOP_NCII = "stop_ncii"
    TAT = "tech_against_terrorism"


#: Kinds whose hashes are child sexual abuse material or intimate images shared without consent: they feed
#: restricted banks only, and are child-safety matters.
RESTRICTED_KINDS = frozenset({ExchangeKind.NCMEC, ExchangeKind.STOP_NCII})


class Opinion(enum.StrEnum):
    """What Bastion tells an exchange about one of its records. Values are storage keys."""

    SEEN = "seen"
    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True)
class Signal:
    """One hash a record carries, in Bastion's signal type names."""

    signal_type: str
    value: str
    category: str = ""


@dataclass(frozen=True)
class RecordUpdate:
    """One record as the exchange has it now: its signals (none: the record was deleted or no longer qualifies)
    and what feedback will need to name it (``detail``)."""

    key: str
    signals: tuple[Signal, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Batch:
    """One page of updates and the checkpoint that is true once they are applied."""

    records: list[RecordUpdate]
    checkpoint: dict[str, object]


@dataclass(frozen=True)
class FeedbackTarget:
    """A record to send an opinion about."""

    record: str
    detail: str
    signal_type: str
    value: str
    opinion: Opinion


@dataclass(frozen=True)
class Contribution:
    """A hash Bastion shares with an exchange as new (a crisis's confirmed perpetrator content): the value, the
    tags it is shared under (the crisis's reference and categories) and a description for the exchange's members."""

    signal_type: str
    value: str
    tags: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class ContributionOutcome:
    """How sharing one hash ended: the exchange's id of what it accepted, or the error that ended it (a refusal,
    or out of attempts). ``key`` is the outbox message's, so the outcome is recorded once however often it is told."""

    subject: str
    exchange: str
    signal_type: str
    value: str
    key: str
    accepted_id: str = ""
    error: str = ""
    http_status: int | None = None
