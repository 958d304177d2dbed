"""Every event kind of the two domains has its payload model, and the outbox kind fits its column."""

from __future__ import annotations

from bastion.designations import events as designation_events
from bastion.factchecks import events as factcheck_events


def test_every_kind_has_a_payload() -> None:
    assert set(factcheck_events.PAYLOADS) == set(factcheck_events.FactcheckKind)
    assert set(designation_events.PAYLOADS) == set(designation_events.DesignationKind)


def test_kinds_fit_their_columns() -> None:
    assert all(len(k.value) <= 48 for k in [*factcheck_events.FactcheckKind, *designation_events.DesignationKind])
    assert all(len(k.value) <= 64 for k in factcheck_events.FactcheckMessage)
