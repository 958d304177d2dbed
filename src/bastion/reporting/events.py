"""A report's history: its event kinds, their payloads, and the one pure function that moves a report's state.

Every change of a report (drafted, revised, sent) and of its delivery to each centre (submitted, finished, failed,
sent again, retracted) is an event in ``report_events`` (``core/events.py``), written in the transaction that makes
the change. The states on the report and delivery rows are projections of those events, moved only by
``next_state``: its table is the whole of the rules, tested as a table (``tests/reporting/test_events.py``).

A delivery's state uses the report's names (``DeliveryState`` values are ``ReportState`` values without the draft);
the report's state follows its NCMEC delivery once sent.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field

from bastion.reporting.interfaces import InvalidTransition, ReportState


class ReportEventKind(enum.StrEnum):
    """Values are storage keys: never rename; retire a value by keeping it reserved here."""

    DRAFTED = "report.drafted"
    REVISED = "report.revised"  # a specialist set the urgency or a file's classification
    MATERIAL_SUPPLIED = "report.material_supplied"  # the platform handed in a file's bytes (sealed)
    SENT = "report.sent"  # validated and queued for the centres
    PURGED = "report.purged"  # preservation ended: the material is deleted, hashes and documents stay
    #: The account uploaded a reported file again: recorded with the report, not reported twice (a duplicate
    #: avoided; transparency counts it). Written with the ``report_repeats`` row, in its transaction.
    REPEAT_RECORDED = "report.repeat_recorded"
    SUBMITTED = "delivery.submitted"  # NCMEC gave its report id; files and finish still to come
    FINISHED = "delivery.finished"  # the centre has the whole report
    FAILED = "delivery.failed"  # a person must act
    RESENT = "delivery.resent"  # a failed delivery queued again from the start
    RESUMED = "delivery.resumed"  # a failed NCMEC delivery queued again where it stopped (NCMEC holds its id)
    RETRACT_REQUESTED = "delivery.retract_requested"
    RETRACTED = "delivery.retracted"


D, Q, S, F, X, R = (ReportState.DRAFT, ReportState.QUEUED, ReportState.SUBMITTED, ReportState.FINISHED,
                    ReportState.FAILED, ReportState.RETRACTED)
#: Where NCMEC holds the report (or did): it can be retracted there.
_HELD = frozenset({S, F, X})
_SETTLED = frozenset({D, F, X, R})
_ANY = frozenset(ReportState)

#: kind -> (states it may start from, None meaning a report not yet drafted; resulting state, None: unchanged)
_TRANSITIONS: dict[ReportEventKind, tuple[frozenset[ReportState | None], ReportState | None]] = {
    ReportEventKind.DRAFTED: (frozenset({None}), D),
    ReportEventKind.REVISED: (frozenset({D}), None),
    ReportEventKind.MATERIAL_SUPPLIED: (frozenset({D}), None),
    ReportEventKind.SENT: (frozenset({D}), Q),
    # A report in the outbox or half-way through NCMEC's procedure keeps its material until it is done.
    ReportEventKind.PURGED: (frozenset(_SETTLED), None),
    # Another upload of a reported file is recorded whatever the report's state: a draft names it, a sent one covers it.
    ReportEventKind.REPEAT_RECORDED: (frozenset(_ANY), None),
    ReportEventKind.SUBMITTED: (frozenset({Q}), S),
    ReportEventKind.FINISHED: (frozenset({Q, S}), F),
    ReportEventKind.FAILED: (frozenset({Q, S}), X),
    ReportEventKind.RESENT: (frozenset({X}), Q),
    ReportEventKind.RESUMED: (frozenset({X}), S),
    ReportEventKind.RETRACT_REQUESTED: (frozenset(_HELD), None),
    ReportEventKind.RETRACTED: (frozenset(_HELD), R),
}

#: Why a kind is refused, in words a specialist can act on.
_REFUSALS: dict[ReportEventKind, str] = {
    ReportEventKind.DRAFTED: "a report is drafted once",
    ReportEventKind.REVISED: "the report was sent already ({state}); it can no longer change",
    ReportEventKind.MATERIAL_SUPPLIED: "the report was sent already ({state}); it can no longer change",
    ReportEventKind.SENT: "the report was sent already ({state}); it can no longer change",
    ReportEventKind.PURGED: "a report that is {state} keeps its material until its delivery is done",
    ReportEventKind.RESENT: "only a failed delivery can be sent again (it is {state})",
    ReportEventKind.RESUMED: "only a failed delivery can be sent again (it is {state})",
    ReportEventKind.RETRACT_REQUESTED: "only a report NCMEC holds can be retracted (it is {state})",
    ReportEventKind.RETRACTED: "only a report NCMEC holds can be retracted (it is {state})",
}


def next_state(current: ReportState | None, kind: ReportEventKind) -> ReportState:
    """The state after ``kind``, or ``InvalidTransition`` (409) when ``kind`` may not happen in ``current``."""
    allowed, result = _TRANSITIONS[kind]
    if current not in allowed:
        state = current.value if current is not None else "not drafted"
        why = _REFUSALS.get(kind, "a delivery that is {state} cannot become " + kind.value.partition(".")[2])
        raise InvalidTransition(why.format(state=state))
    if result is None:
        assert current is not None  # only DRAFTED starts from None, and it has a result
        return current
    return result


def allowed_from(kind: ReportEventKind) -> frozenset[ReportState]:
    """The states ``kind`` may happen in (for queries that select reports by what may be done with them)."""
    return frozenset(s for s in _TRANSITIONS[kind][0] if s is not None)


# --- payloads -----------------------------------------------------------------------------------------------------


class Attempt(BaseModel):
    """One attempt of a reported adult to reach a minor, as an enticement report names it: when, how, whom."""

    at: str
    action: str
    target: str
    decision: str


class Drafted(BaseModel):
    account_id: str
    trigger: str
    #: An enticement report's source (``minors-case:<id>``) and the attempts it reports; empty for material.
    source: str = ""
    attempts: list[Attempt] = []


class Revised(BaseModel):
    urgent: bool
    #: content id -> the industry classification set
    classifications: dict[str, str] = Field(default_factory=dict)


class MaterialSupplied(BaseModel):
    content_id: str
    size: int


class Sent(BaseModel):
    centres: list[str]
    fingerprint: str


class RepeatRecorded(BaseModel):
    """A duplicate avoided: ``content_id`` is another upload of the reported file ``repeat_of``."""

    content_id: str
    repeat_of: str
    after_sending: bool


class Purged(BaseModel):
    files: int


class DeliveryChanged(BaseModel):
    """Every ``delivery.*`` kind: which centre, its id of the report (when it gave one), and why it failed."""

    centre: str
    remote_id: str = ""
    error: str = ""
