"""TCO Art. 8: each competent authority's year, counted from the hub's event log (orders written as the hub does)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert

from bastion.core.db import Database
from bastion.hub.events import HubEventKind, Issued
from bastion.hub.models import Authority, HubEvent, HubOrder
from bastion.transparency import reports

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_each_authority_s_orders_and_what_became_of_them(db: Database) -> None:
    with db.write() as session:
        session.execute(insert(Authority), [
            {"id": 1, "name": "BKA", "member_state": "DE", "authority_type": "police", "token_actor": "a1",
             "public_keys": [], "created_at": T0},
            {"id": 2, "name": "OCLCTIC", "member_state": "FR", "authority_type": "police", "token_actor": "a2",
             "public_keys": [], "created_at": T0}])
        orders, events = [], []

        def order(ref: str, authority: int, kind: str, urls: int, then: list[HubEventKind],
                  at: dt.datetime = T0) -> None:
            orders.append({"hub_reference": ref, "kind": kind, "authority_id": authority, "authority_reference": ref,
                           "provider_id": 1, "body": {}, "state": "sent", "issued_at": at, "updated_at": at})
            events.append({"subject": ref, "kind": HubEventKind.ISSUED.value, "actor": "a", "at": at,
                           "data": Issued(kind=kind, urls=urls).model_dump(mode="json"), "external_id": None})
            events.extend({"subject": ref, "kind": k.value, "actor": "a", "at": at + dt.timedelta(minutes=20),
                           "data": {}, "external_id": None} for k in then)

        order("H-1", 1, "removal_order", 3, [HubEventKind.FEEDBACK])
        order("H-2", 1, "removal_order", 1, [HubEventKind.INABILITY])
        order("H-3", 1, "referral", 2, [])
        order("H-4", 2, "removal_order", 5, [HubEventKind.FEEDBACK, HubEventKind.SCRUTINY_CLEARED])
        order("H-5", 2, "removal_order", 1, [HubEventKind.ENDED])
        order("H-old", 2, "removal_order", 9, [HubEventKind.FEEDBACK], at=T0 - dt.timedelta(days=365))
        session.execute(insert(HubOrder), orders)
        session.execute(insert(HubEvent), events)
    with db.read() as session:
        found = {f.authority: f.model_dump() for f in reports.tco_authorities(session, 2026)}
    assert found["BKA"] == {"authority": "BKA", "member_state": "DE", "removal_orders": 2, "referrals": 1,
                            "items_in_orders": 4, "executed": 1, "not_executed": 1, "scrutiny_cleared": 0, "ended": 0}
    assert found["OCLCTIC"] == {"authority": "OCLCTIC", "member_state": "FR", "removal_orders": 2, "referrals": 0,
                                "items_in_orders": 6, "executed": 1, "not_executed": 0, "scrutiny_cleared": 1,
                                "ended": 1}
