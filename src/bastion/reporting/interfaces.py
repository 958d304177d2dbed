"""The reporting domain's names: centres, delivery states, industry classifications, and its exceptions.

Values are storage keys: never rename one; retire a value by keeping it reserved here.
"""

from __future__ import annotations

import enum

from bastion.core.errors import DomainError


class CentreName(enum.StrEnum):
    """Where a report goes. One delivery row per report and centre."""

    NCMEC = "ncmec"
    EU_CENTRE = "eu_centre"


class DeliveryState(enum.StrEnum):
    """A report's life at one centre, as the console shows it."""

    QUEUED = "queued"  # in the outbox, not yet accepted by the centre
    SUBMITTED = "submitted"  # NCMEC gave a report id; files and finish are still to come (resumable)
    FINISHED = "finished"  # the centre has the whole report
    FAILED = "failed"  # the centre refused it, or our credentials did; a person must act
    RETRACTED = "retracted"


class ReportState(enum.StrEnum):
    """The report as a whole: a draft until a specialist sends it; then the state of its NCMEC delivery."""

    DRAFT = "draft"
    QUEUED = "queued"  # sent by a specialist, waiting in the outbox
    SUBMITTED = "submitted"
    FINISHED = "finished"
    FAILED = "failed"
    RETRACTED = "retracted"


class Classification(enum.StrEnum):
    """The industry classification scale NCMEC accepts in ``fileDetails`` (A: prepubescent, B: pubescent;
    1: sex act, 2: lascivious exhibition)."""

    A1 = "A1"
    A2 = "A2"
    B1 = "B1"
    B2 = "B2"


class Trigger(enum.StrEnum):
    """Why material was drafted into a report."""

    SPECIALIST = "specialist"  # a child-safety specialist confirmed it on a case
    KNOWN_HASH = "known_hash"  # it matched a restricted bank of known material and was blocked
    GROOMING_CASE = "grooming_case"  # a specialist confirmed an adult's attempts to reach minors (online enticement)


class ReportingError(DomainError):
    """Base of the domain's errors; ``status`` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"


class ReportNotFound(ReportingError):
    status = 404
    title = "Report not found"


class InvalidTransition(ReportingError):
    """What was asked cannot happen in the report's (or delivery's) state: ``events.next_state`` refused it."""

    status = 409
    title = "Invalid transition"


class MaterialMismatch(ReportingError):
    """Bytes offered for a reported file do not have the hashes recorded when it was uploaded."""

    status = 422
    title = "Material does not match"


class MaterialGone(ReportingError):
    """The preserved material was purged (its preservation period ended) or never supplied."""

    status = 410
    title = "Material gone"


class AlreadyReported(ReportingError):
    """The same material of the same account has already gone to this centre (same fingerprint)."""

    status = 409
    title = "Already reported"


class DestinationRefused(ReportingError):
    """The centre's URL is not one reports may go to (production not switched on, or not HTTPS)."""

    status = 409
    title = "Destination refused"


class InvalidReport(ReportingError):
    """The report does not validate against the centre's schema: nothing is sent."""

    status = 422
    title = "Invalid report"
